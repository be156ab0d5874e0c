/**
 * DPM-Solver++(2M) as diffusers' DPMSolverMultistepScheduler with its defaults (dpmsolver++, order 2, midpoint,
 * lower_order_final, final sigma 0) and SD1.5's config; optionally with Karras sigmas (`dpmpp_2m_karras`).
 */
import * as tf from '@tensorflow/tfjs';
import type { Sampler } from './sampler.ts';
import {
  checkSteps,
  karrasSigmas,
  leadingTimesteps,
  predictX0,
  sigmaToTimestep,
  trainSigmas,
  vpOf,
} from './schedule.ts';

/** numpy's round(): halves go to the even neighbour. */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Timesteps and sigmas (float32, final 0 appended) of the multistep solvers, 'leading' or Karras. */
export function multistepSchedule(steps: number, karras: boolean): { timesteps: number[]; sigmas: number[] } {
  checkSteps(steps);
  const train = trainSigmas();
  let timesteps: number[];
  let sigmas: number[];
  if (karras) {
    sigmas = karrasSigmas(steps);
    timesteps = sigmas.map((s) => roundHalfEven(sigmaToTimestep(s)));
  } else {
    timesteps = leadingTimesteps(steps, true);
    sigmas = timesteps.map((t) => train[t]!);
  }
  return { timesteps, sigmas: [...sigmas, 0].map(Math.fround) };
}

/** The DPM-Solver++(2M) sampler; see the module comment. */
export function dpmSolverSampler(steps: number, karras: boolean): Sampler {
  const { timesteps, sigmas } = multistepSchedule(steps, karras);
  let previous: tf.Tensor4D | undefined; // x0 prediction of the step before
  return {
    name: karras ? 'dpmpp_2m_karras' : 'dpmpp_2m',
    timesteps,
    sigmas,
    initNoiseSigma: 1,
    inputScale: () => 1,
    needsNoise: () => false,
    step(step, eps, x) {
      const s0 = vpOf(sigmas[step]!);
      const t = vpOf(sigmas[step + 1]!);
      const m0 = predictX0(x, eps, s0.alpha, s0.sigmaT);
      const h = t.lambda - s0.lambda;
      // sigma_t / sigma_s0 * x - alpha_t (e^-h - 1) D0 [- 0.5 alpha_t (e^-h - 1) D1]; at sigma 0 this is x0.
      const xScale = t.sigmaT / s0.sigmaT;
      const d0Scale = -t.alpha * Math.expm1(-h);
      let next = x.mul(xScale).add(m0.mul(d0Scale));
      // First order on the first step (no history) and on the last (lower_order_final / final sigma 0).
      if (previous && step < timesteps.length - 1) {
        const s1 = vpOf(sigmas[step - 1]!);
        const r0 = (s0.lambda - s1.lambda) / h;
        // D1 = (m0 - m1) / r0, weighted 0.5 * (-alpha_t (e^-h - 1)).
        next = next.add(m0.sub(previous).mul((0.5 * d0Scale) / r0));
      }
      previous?.dispose();
      previous = tf.keep(m0);
      return next as tf.Tensor4D;
    },
    dispose() {
      previous?.dispose();
      previous = undefined;
    },
  };
}
