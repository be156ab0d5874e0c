/**
 * One interface over every sampler the worker offers, so a single sampling loop (pipelines/sample.ts) drives
 * them all. Each sampler follows its diffusers scheduler with SD1.5's scheduler config (scaled_linear betas
 * 0.00085..0.012, 1000 train steps, steps_offset 1, 'leading' timestep spacing, epsilon prediction); `ddim`
 * stays the original ldm sampler.
 */
import { SCHEDULERS, type Scheduler } from '@contour/shared/contracts';
import type * as tf from '@tensorflow/tfjs';
import { ddimSampler } from './ddim-sampler.ts';
import { dpmSolverSampler } from './dpm-solver.ts';
import { eulerAncestralSampler } from './euler-ancestral.ts';
import { lcmSampler } from './lcm.ts';
import { unipcSampler } from './unipc.ts';

/** Sampler names: the API's `scheduler` values. */
export const SAMPLER_NAMES = SCHEDULERS;
/** One sampler name. */
export type SamplerName = Scheduler;

/**
 * A sampler set up for one generation. Stateful (multistep samplers keep earlier predictions): call
 * {@link Sampler.step} once per step in order, then {@link Sampler.dispose}.
 */
export interface Sampler {
  readonly name: SamplerName;
  /** The model's timestep input at each step, in sampling order; its length is the number of steps run. */
  readonly timesteps: readonly number[];
  /** Noise levels sqrt((1 - abar) / abar) at each step plus the final one, for samplers that step in sigma. */
  readonly sigmas?: readonly number[];
  /** x_T is standard normal noise times this (diffusers' init_noise_sigma). */
  readonly initNoiseSigma: number;
  /** Factor on x before the model at `step` (diffusers' scale_model_input). */
  inputScale(step: number): number;
  /** Whether `step` adds fresh standard normal noise (ancestral / consistency samplers, DDIM with eta > 0). */
  needsNoise(step: number): boolean;
  /**
   * The latents after `step` from the (guided) eps the model predicted at `x`. Runs inside the caller's tidy;
   * inputs stay owned by the caller, tensors the sampler keeps across steps are its own.
   */
  step(step: number, eps: tf.Tensor4D, x: tf.Tensor4D, noise?: tf.Tensor4D): tf.Tensor4D;
  /** Releases the tensors kept between steps. */
  dispose(): void;
}

/** Options of {@link createSampler}. */
export interface SamplerOptions {
  /** DDIM's eta (0 = deterministic); the other samplers ignore it. */
  eta?: number;
}

/** The sampler `name` for `steps` requested steps (throws SchedulerError for a count it cannot run). */
export function createSampler(name: SamplerName, steps: number, options: SamplerOptions = {}): Sampler {
  switch (name) {
    case 'ddim':
      return ddimSampler(steps, options.eta ?? 0);
    case 'unipc':
      return unipcSampler(steps);
    case 'dpmpp_2m':
      return dpmSolverSampler(steps, false);
    case 'dpmpp_2m_karras':
      return dpmSolverSampler(steps, true);
    case 'euler_a':
      return eulerAncestralSampler(steps);
    case 'lcm':
      return lcmSampler(steps);
  }
}

/** Steps actually run for `steps` requested (only DDIM's original discretisation can differ). */
export function actualSamplerSteps(name: SamplerName, steps: number): number {
  return timestepsOf(name, steps).length;
}

/** The model timesteps of a sampler without allocating anything (for plans and progress). */
export function timestepsOf(name: SamplerName, steps: number): readonly number[] {
  const sampler = createSampler(name, steps);
  sampler.dispose();
  return sampler.timesteps;
}
