/**
 * Latent consistency sampling as diffusers' LCMScheduler (for LCM-distilled weights) with SD1.5's config:
 * 50 original steps (timesteps 999, 979, ..., 19), timestep_scaling 10, no clipping.
 */
import type * as tf from '@tensorflow/tfjs';
import { alphasCumprod, NUM_TRAIN_TIMESTEPS } from './ddim.ts';
import type { Sampler } from './sampler.ts';
import { checkSteps, predictX0 } from './schedule.ts';

/** LCMScheduler's original_inference_steps: the most steps LCM can run. */
export const LCM_ORIGINAL_STEPS = 50;

/** LCM timesteps: `steps` evenly spaced indices (floored) into the 50-step distillation schedule, descending. */
export function lcmTimesteps(steps: number): number[] {
  checkSteps(steps, LCM_ORIGINAL_STEPS);
  const k = Math.floor(NUM_TRAIN_TIMESTEPS / LCM_ORIGINAL_STEPS);
  const origin = Array.from({ length: LCM_ORIGINAL_STEPS }, (_, i) => (LCM_ORIGINAL_STEPS - i) * k - 1);
  return Array.from({ length: steps }, (_, i) => origin[Math.floor(i * (LCM_ORIGINAL_STEPS / steps))]!);
}

/** The LCM sampler: denoised = c_out x0 + c_skip x, re-noised to the next timestep (not after the last). */
export function lcmSampler(steps: number): Sampler {
  const timesteps = lcmTimesteps(steps);
  const abar = alphasCumprod();
  const last = timesteps.length - 1;
  return {
    name: 'lcm',
    timesteps,
    initNoiseSigma: 1,
    inputScale: () => 1,
    needsNoise: (step) => step < last,
    step(step, eps, x, noise) {
      const t = timesteps[step]!;
      const a = abar[t]!;
      const scaled = t * 10;
      const cSkip = 0.25 / (scaled * scaled + 0.25);
      const cOut = scaled / Math.sqrt(scaled * scaled + 0.25);
      const denoised = predictX0(x, eps, Math.sqrt(a), Math.sqrt(1 - a))
        .mul(cOut)
        .add(x.mul(cSkip)) as tf.Tensor4D;
      if (step === last) return denoised;
      if (!noise) throw new Error('lcm needs noise before its last step');
      const aPrev = abar[timesteps[step + 1]!]!;
      return denoised.mul(Math.sqrt(aPrev)).add(noise.mul(Math.sqrt(1 - aPrev))) as tf.Tensor4D;
    },
    dispose: () => {},
  };
}
