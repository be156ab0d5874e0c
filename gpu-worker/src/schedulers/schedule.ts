/** Schedule pieces shared by the diffusers-style samplers (SD1.5 config). */
import * as tf from '@tensorflow/tfjs';
import { alphasCumprod, NUM_TRAIN_TIMESTEPS, SchedulerError } from './ddim.ts';

/** SD1.5's steps_offset. */
export const STEPS_OFFSET = 1;

/** Throws SchedulerError unless `steps` is an integer in 1..max. */
export function checkSteps(steps: number, max = NUM_TRAIN_TIMESTEPS): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > max) {
    throw new SchedulerError(`steps must be an integer in 1..${max}, got ${steps}`);
  }
}

let cachedSigmas: Float64Array | undefined;

/** Train-time noise levels sqrt((1 - abar_t) / abar_t), held as float32 as diffusers does. */
export function trainSigmas(): Float64Array {
  if (cachedSigmas) return cachedSigmas;
  const abar = alphasCumprod();
  cachedSigmas = abar.map((a) => Math.fround(Math.sqrt((1 - a) / a)));
  return cachedSigmas;
}

/**
 * 'leading' timesteps, descending: (0..n-1) * (1000 // divisor) reversed, + steps_offset. Euler divides by the step
 * count; the multistep solvers by steps + 1 and drop the trailing 0 (their n+1 grid), as diffusers does.
 */
export function leadingTimesteps(steps: number, multistep: boolean): number[] {
  const ratio = Math.floor(NUM_TRAIN_TIMESTEPS / (multistep ? steps + 1 : steps));
  const first = multistep ? 1 : 0;
  const out: number[] = [];
  for (let i = steps - 1 + first; i >= first; i--) out.push(i * ratio + STEPS_OFFSET);
  return out;
}

/** Karras et al. (2022) noise levels, rho 7, from the largest to the smallest train sigma. */
export function karrasSigmas(steps: number): number[] {
  const sigmas = trainSigmas();
  const minInv = sigmas[0]! ** (1 / 7);
  const maxInv = sigmas[sigmas.length - 1]! ** (1 / 7);
  return Array.from({ length: steps }, (_, i) => {
    const ramp = steps === 1 ? 0 : i / (steps - 1);
    return (maxInv + ramp * (minInv - maxInv)) ** 7;
  });
}

/** The (fractional) train timestep of a noise level: linear interpolation in log sigma, as diffusers' _sigma_to_t. */
export function sigmaToTimestep(sigma: number): number {
  const sigmas = trainSigmas();
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  const logAt = (i: number) => Math.fround(Math.log(sigmas[i]!));
  let low = 0;
  for (let i = 0; i < sigmas.length; i++) if (logSigma >= logAt(i)) low = i;
  low = Math.min(low, sigmas.length - 2);
  const w = Math.min(1, Math.max(0, (logAt(low) - logSigma) / (logAt(low) - logAt(low + 1))));
  return (1 - w) * low + w * (low + 1);
}

/** VP coefficients of a sigma: alpha = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha, lambda = log(alpha / sigma_t). */
export function vpOf(sigma: number): { alpha: number; sigmaT: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const sigmaT = sigma * alpha;
  return { alpha, sigmaT, lambda: Math.log(alpha) - Math.log(sigmaT) };
}

/** x0 = (x - sigma_t * eps) / alpha (diffusers' convert_model_output for epsilon prediction). */
export function predictX0(x: tf.Tensor4D, eps: tf.Tensor4D, alpha: number, sigmaT: number): tf.Tensor4D {
  return tf.tidy(() => x.sub(eps.mul(sigmaT)).div(alpha) as tf.Tensor4D);
}
