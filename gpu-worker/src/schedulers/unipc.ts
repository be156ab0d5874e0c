/**
 * UniPC as diffusers' UniPCMultistepScheduler with its defaults (bh2, order 2, predict_x0, lower_order_final,
 * corrector on every step, no solver_p, final sigma 0) and SD1.5's config. Each step first corrects the latents
 * the model just saw (UniC, using the new prediction), then predicts the next ones (UniP).
 */
import * as tf from '@tensorflow/tfjs';
import { multistepSchedule } from './dpm-solver.ts';
import type { Sampler } from './sampler.ts';
import { predictX0, vpOf } from './schedule.ts';

const ORDER = 2;

/** B(h) and the bh2 coefficients b_1, b_2 (hh = -h for data prediction). */
function bh2(h: number): { hPhi1: number; bH: number; b: [number, number] } {
  const hh = -h;
  const hPhi1 = Math.expm1(hh);
  const bH = Math.expm1(hh);
  const hPhi2 = hPhi1 / hh - 1;
  const hPhi3 = hPhi2 / hh - 1 / 2;
  return { hPhi1, bH, b: [hPhi2 / bH, (hPhi3 * 2) / bH] };
}

/** The UniPC sampler; see the module comment. */
export function unipcSampler(steps: number): Sampler {
  const { timesteps, sigmas } = multistepSchedule(steps, false);
  const vp = sigmas.map(vpOf);
  const history: tf.Tensor4D[] = []; // x0 predictions, newest last (at most ORDER)
  let lastSample: tf.Tensor4D | undefined;
  let lastOrder = 0;
  let lowerOrderNums = 0;

  /** UniC: corrects x (the latents step `step` started from) with the new prediction m. */
  const correct = (step: number, m: tf.Tensor4D, order: number): tf.Tensor4D => {
    const t = vp[step]!;
    const s0 = vp[step - 1]!;
    const m0 = history[history.length - 1]!;
    const h = t.lambda - s0.lambda;
    const { hPhi1, bH, b } = bh2(h);
    let correction: tf.Tensor;
    if (order === 1) {
      correction = m.sub(m0).mul(0.5);
    } else {
      const r1 = (vp[step - 2]!.lambda - s0.lambda) / h;
      // Solve [[1, 1], [r1, 1]] rho = b.
      const rho0 = (b[0] - b[1]) / (1 - r1);
      const rho1 = b[0] - rho0;
      const d1 = history[history.length - 2]!.sub(m0).div(r1);
      correction = d1.mul(rho0).add(m.sub(m0).mul(rho1));
    }
    return lastSample!
      .mul(t.sigmaT / s0.sigmaT)
      .sub(m0.mul(t.alpha * hPhi1))
      .sub(correction.mul(t.alpha * bH)) as tf.Tensor4D;
  };

  /** UniP: the latents after `step` from x and the predictions so far. */
  const predict = (step: number, x: tf.Tensor4D, order: number): tf.Tensor4D => {
    const t = vp[step + 1]!;
    const s0 = vp[step]!;
    const m0 = history[history.length - 1]!;
    const h = t.lambda - s0.lambda;
    const { hPhi1, bH } = bh2(h);
    let next = x.mul(t.sigmaT / s0.sigmaT).sub(m0.mul(t.alpha * hPhi1));
    if (order === 2) {
      const r1 = (vp[step - 1]!.lambda - s0.lambda) / h;
      const d1 = history[history.length - 2]!.sub(m0).div(r1);
      next = next.sub(d1.mul(t.alpha * bH * 0.5));
    }
    return next as tf.Tensor4D;
  };

  return {
    name: 'unipc',
    timesteps,
    sigmas,
    initNoiseSigma: 1,
    inputScale: () => 1,
    needsNoise: () => false,
    step(step, eps, x) {
      const s = vp[step]!;
      const m = predictX0(x, eps, s.alpha, s.sigmaT);
      const sample = step > 0 && lastSample ? correct(step, m, lastOrder) : x;
      history.push(tf.keep(m));
      if (history.length > ORDER) history.shift()!.dispose();
      // lower_order_final: order 1 on the last step; warm-up: at most one more than the steps so far.
      const order = Math.min(ORDER, timesteps.length - step, lowerOrderNums + 1);
      lastSample?.dispose();
      lastSample = tf.keep(sample.clone());
      const next = predict(step, sample, order);
      lastOrder = order;
      if (lowerOrderNums < ORDER) lowerOrderNums++;
      return next;
    },
    dispose() {
      tf.dispose(history);
      history.length = 0;
      lastSample?.dispose();
      lastSample = undefined;
    },
  };
}
