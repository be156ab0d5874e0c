import * as tf from '@tensorflow/tfjs';
import { type ModelEngine, type ScaledControl, tfModelEngine } from '../engine/model-engine.ts';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import { controlActive, controlScales } from '../schedulers/ddim.ts';
import { createSampler, type Sampler, type SamplerName } from '../schedulers/sampler.ts';

/** One ControlNet applied during sampling, with its hint already encoded ({@link ControlNetHead.encodeHint}). */
export interface EncodedControl {
  net: ControlNetHead;
  /** Encoded hint, batch 1 (shared) or the latent batch size. */
  encodedHint: tf.Tensor4D;
  /** 0..2: multiplies all 13 residuals (times 0.825^(12-i) in guess mode). */
  strength: number;
  /** Fraction of the steps (0..1) before which the unit is off. */
  start: number;
  /** Fraction of the steps (0..1) after which the unit is off. */
  end: number;
}

const defaultEngine: ModelEngine = tfModelEngine;

/** Progress after each finished step. */
export interface StepProgress {
  step: number;
  totalSteps: number;
  timestep: number;
  elapsedMs: number;
}

/** Raised when a generation is aborted between steps. */
export class GenerationAbortedError extends Error {
  override readonly name = 'GenerationAbortedError';
  readonly code = 'generation_aborted';
}

/** Inputs of {@link sampleLatents}; all tensors stay owned by the caller. */
export interface SampleRequest {
  unet: UNetModel;
  /** Initial noise x_T [B, h, w, 4]. */
  xT: tf.Tensor4D;
  /** Conditional text embeddings [B, tokens, dim]. */
  context: tf.Tensor3D;
  /** Unconditional embeddings [B, tokens, dim]; classifier-free guidance runs when given and scale != 1. */
  uncontext?: tf.Tensor3D;
  guidanceScale: number;
  controls: EncodedControl[];
  steps: number;
  /** The sampler (default `ddim`, the original). */
  scheduler?: SamplerName;
  /** DDIM's eta; the other samplers ignore it. */
  eta: number;
  /** Guess mode: residual i scaled by 0.825^(12-i), unconditional branch without control. */
  guessMode: boolean;
  /** Standard normal noise of a given length for step `step` (DDIM with eta > 0, euler_a, lcm). */
  stepNoise?: (step: number, count: number) => Float32Array;
  /** Run the conditional and unconditional passes as one batch (default true). */
  batchGuidance?: boolean;
  /** The runtime of the model calls (default: tfjs on the active backend). */
  engine?: ModelEngine;
  /**
   * Start part-way (img2img): the first step to run and the latents to run it from, in the sampler's space
   * (used as they are, not multiplied by the initial sigma; `xT` is then ignored). The loop disposes them.
   */
  start?: { step: number; latents: (sampler: Sampler) => tf.Tensor4D };
  /**
   * Latent tiles for latents over a memory cap: every model evaluation runs on overlapping size x size
   * windows (with the encoded hints cropped alike) and the guided eps is their average where they overlap
   * (MultiDiffusion's averaging, as tiled-diffusion upscalers do). Sizes in latent pixels, multiples of 8.
   */
  tiles?: { size: number; overlap: number };
  /** Replaces x before each step (inpaint's latent-mask blending); runs inside a tidy, x stays the loop's. */
  blend?: (sampler: Sampler, step: number, x: tf.Tensor4D) => tf.Tensor4D;
  onProgress?: (progress: StepProgress) => void;
  signal?: AbortSignal;
}

/** The units active at `step`, with their residual scales. */
function activeUnits(request: SampleRequest, step: number, totalSteps: number): ScaledControl[] {
  return request.controls
    .filter((unit) => controlActive(step, totalSteps, unit.start, unit.end))
    .map((unit) => ({
      net: unit.net,
      encodedHint: unit.encodedHint,
      scales: controlScales(unit.strength, request.guessMode, unit.net.controlCount),
    }));
}

/** The guided eps for one step (the caller disposes it). */
async function guidedEps(
  request: SampleRequest,
  x: tf.Tensor4D,
  timestep: number,
  step: number,
  total: number,
): Promise<tf.Tensor4D> {
  const { unet, context, uncontext, guidanceScale, guessMode } = request;
  const engine = request.engine ?? defaultEngine;
  const batch = x.shape[0];
  const timesteps = (n: number) => Array<number>(n).fill(timestep);
  const units = activeUnits(request, step, total);
  if (!uncontext || guidanceScale === 1) {
    return engine.controlledEps(unet, x, timesteps(batch), context, units, batch);
  }
  const owned: tf.Tensor[] = [];
  try {
    let cond: tf.Tensor4D;
    let uncond: tf.Tensor4D;
    if (request.batchGuidance ?? true) {
      const x2 = tf.concat([x, x], 0);
      const context2 = tf.concat([context, uncontext], 0);
      // Guess mode: the unconditional half gets no control (the engine pads its residuals with zeros).
      const eps = await engine.controlledEps(
        unet,
        x2,
        timesteps(2 * batch),
        context2,
        units,
        guessMode ? batch : 2 * batch,
      );
      owned.push(x2, context2, eps);
      [cond, uncond] = tf.split(eps, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
    } else {
      cond = await engine.controlledEps(unet, x, timesteps(batch), context, units, batch);
      owned.push(cond);
      uncond = await engine.controlledEps(
        unet,
        x,
        timesteps(batch),
        uncontext,
        guessMode ? [] : units,
        batch,
      );
    }
    owned.push(cond, uncond);
    return tf.tidy(() => uncond.add(cond.sub(uncond).mul(guidanceScale)) as tf.Tensor4D);
  } finally {
    tf.dispose(owned);
  }
}

/** Window starts covering `length` with windows of `size` overlapping by at least `overlap`; the last is flush. */
export function tileStarts(length: number, size: number, overlap: number): number[] {
  if (length <= size) return [0];
  const stride = Math.max(1, size - overlap);
  const starts: number[] = [];
  for (let start = 0; start + size < length; start += stride) starts.push(start);
  starts.push(length - size);
  return starts;
}

/** {@link guidedEps}, tiled over the latent when `request.tiles` asks for windows smaller than it. */
async function tiledEps(
  request: SampleRequest,
  x: tf.Tensor4D,
  timestep: number,
  step: number,
  total: number,
): Promise<tf.Tensor4D> {
  const [, height, width] = x.shape;
  const tiles = request.tiles;
  if (!tiles || (height <= tiles.size && width <= tiles.size)) {
    return guidedEps(request, x, timestep, step, total);
  }
  const th = Math.min(tiles.size, height);
  const tw = Math.min(tiles.size, width);
  const counts = new Float32Array(height * width);
  let sum = tf.zerosLike(x);
  for (const y0 of tileStarts(height, th, tiles.overlap)) {
    for (const x0 of tileStarts(width, tw, tiles.overlap)) {
      const crop = <T extends tf.Tensor4D>(t: T) => t.slice([0, y0, x0, 0], [-1, th, tw, -1]) as T;
      const xs = crop(x);
      const controls = request.controls.map((c) => ({ ...c, encodedHint: crop(c.encodedHint) }));
      const eps = await guidedEps({ ...request, controls }, xs, timestep, step, total);
      const next = tf.tidy(() =>
        sum.add(
          eps.pad([
            [0, 0],
            [y0, height - y0 - th],
            [x0, width - x0 - tw],
            [0, 0],
          ]),
        ),
      ) as tf.Tensor4D;
      tf.dispose([sum, xs, eps, ...controls.map((c) => c.encodedHint)]);
      sum = next;
      for (let y = y0; y < y0 + th; y++) for (let xx = x0; xx < x0 + tw; xx++) counts[y * width + xx]!++;
    }
  }
  const result = tf.tidy(() => sum.div(tf.tensor4d(counts, [1, height, width, 1]))) as tf.Tensor4D;
  sum.dispose();
  return result;
}

/**
 * The sampling loop of every sampler, as cldm's ddim_hacked.py / diffusers' pipelines run it: x = x_T * the
 * sampler's initial sigma; per step (highest timestep first) eps = CFG(UNet + ControlNets) on the scaled input,
 * then the sampler's update. Control start/end gate by step fraction for every sampler. Returns the final
 * latents (the caller disposes them). Checks `signal` between steps.
 */
export async function sampleLatents(request: SampleRequest): Promise<tf.Tensor4D> {
  const sampler = createSampler(request.scheduler ?? 'ddim', request.steps, { eta: request.eta });
  const total = sampler.timesteps.length;
  const first = request.start?.step ?? 0;
  const started = performance.now();
  let x: tf.Tensor4D;
  try {
    x = request.start
      ? request.start.latents(sampler)
      : sampler.initNoiseSigma === 1
        ? tf.clone(request.xT)
        : (request.xT.mul(sampler.initNoiseSigma) as tf.Tensor4D);
  } catch (error) {
    sampler.dispose();
    throw error;
  }
  try {
    for (let step = first; step < total; step++) {
      if (request.signal?.aborted) throw new GenerationAbortedError('generation aborted');
      const timestep = sampler.timesteps[step]!;
      if (request.blend) {
        const before = x;
        x = tf.tidy(() => request.blend!(sampler, step, before));
        before.dispose();
      }
      let noise: Float32Array | undefined;
      if (sampler.needsNoise(step)) {
        noise = request.stepNoise?.(step, x.size);
        if (!noise) throw new Error(`${sampler.name} needs stepNoise`);
      }
      const scale = sampler.inputScale(step);
      const input = scale === 1 ? x : (x.mul(scale) as tf.Tensor4D);
      // Control start/end are fractions of the steps actually run (diffusers' controlnet_keep after get_timesteps).
      const eps = await tiledEps(request, input, timestep, step - first, total - first);
      if (input !== x) input.dispose();
      const next = tf.tidy(() => {
        return sampler.step(step, eps, x, noise && (tf.tensor(noise, x.shape) as tf.Tensor4D));
      });
      eps.dispose();
      x.dispose();
      x = next;
      // Let the step finish (and keep the event loop responsive) before reporting it.
      await x.data();
      request.onProgress?.({
        step: step - first + 1,
        totalSteps: total - first,
        timestep,
        elapsedMs: performance.now() - started,
      });
    }
    return x;
  } catch (error) {
    x.dispose();
    throw error;
  } finally {
    sampler.dispose();
  }
}
