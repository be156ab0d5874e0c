import * as tf from '@tensorflow/tfjs';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import { gaussianNoise } from '../pipelines/noise.ts';
import { alphasCumprod, NUM_TRAIN_TIMESTEPS } from '../schedulers/ddim.ts';
import { splitmix32 } from './random.ts';

/** A training micro-batch: clean latents, text embeddings and (for ControlNet) the control maps. */
export interface DiffusionBatch {
  /** x0 [B, h, w, 4]. */
  latents: tf.Tensor4D;
  /** [B, tokens, dim]. */
  context: tf.Tensor3D;
  /** Control maps [B, 8h, 8w, 3] in [0, 1]. */
  hint?: tf.Tensor4D;
}

/** The random draws of one step: timesteps uniform in [0, 1000) and eps ~ N(0, I), seeded. */
export interface DiffusionDraw {
  timesteps: number[];
  noise: tf.Tensor4D;
}

/** Seeded timesteps (uniform over the 1000 training steps, as ldm's `p_losses`) and Gaussian noise eps. */
export function drawDiffusion(
  seed: number,
  step: number,
  shape: [number, number, number, number],
): DiffusionDraw {
  const count = shape.reduce((a, b) => a * b, 1);
  const uniform = splitmix32(Math.imul(seed, 0x9e3779b1) ^ step);
  const timesteps = Array.from({ length: shape[0] }, () => Math.floor(uniform() * NUM_TRAIN_TIMESTEPS));
  return { timesteps, noise: tf.tensor4d(gaussianNoise(seed, step, count), shape) };
}

/** x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (ldm `q_sample`). */
export function qSample(latents: tf.Tensor4D, draw: DiffusionDraw): tf.Tensor4D {
  return tf.tidy(() => {
    const abar = alphasCumprod();
    const b = latents.shape[0];
    const signal = tf.tensor4d(
      draw.timesteps.map((t) => Math.sqrt(abar[t]!)),
      [b, 1, 1, 1],
    );
    const noiseScale = tf.tensor4d(
      draw.timesteps.map((t) => Math.sqrt(1 - abar[t]!)),
      [b, 1, 1, 1],
    );
    return latents.mul(signal).add(draw.noise.mul(noiseScale)) as tf.Tensor4D;
  });
}

/** Options of {@link controlledEps}. */
export interface ControlOptions {
  /** Feed only the middle residual to the UNet (cldm `only_mid_control`). */
  onlyMidControl?: boolean;
}

/** eps prediction of the locked UNet with the ControlNet's residuals (cldm `ControlLDM.apply_model`, scale 1). */
export function controlledEps(
  unet: UNetModel,
  net: ControlNetHead | undefined,
  noisy: tf.Tensor4D,
  timesteps: readonly number[],
  batch: DiffusionBatch,
  options: ControlOptions = {},
): tf.Tensor4D {
  return tf.tidy(() => {
    if (!net) return unet.forward(noisy, timesteps, batch.context);
    if (!batch.hint) throw new Error('a ControlNet batch needs hint images');
    const residuals = net.forward(noisy, timesteps, batch.context, net.encodeHint(batch.hint));
    const controls = options.onlyMidControl
      ? residuals.map((r, i) => (i === residuals.length - 1 ? r : (tf.zerosLike(r) as tf.Tensor4D)))
      : residuals;
    return unet.forward(noisy, timesteps, batch.context, controls);
  });
}

/**
 * Per-timestep loss weight 1 + min((1 - abar) / abar, cap): the eps error scaled toward the x0 error it causes,
 * truncated. With `cap` 0 it is the plain l_simple (every t weighted 1).
 */
export function timestepWeight(timestep: number, cap: number): number {
  if (cap <= 0) return 1;
  const abar = alphasCumprod()[timestep]!;
  return (1 + Math.min((1 - abar) / abar, cap)) / (1 + cap / 2);
}

/**
 * The simple loss of ldm (`l_simple`): mean squared error between predicted and drawn eps. `x0WeightCap` > 0
 * weights each sample by {@link timestepWeight} (used for the base model only: a tiny base trained briefly
 * otherwise predicts x0 badly at high noise, which DDIM's first steps amplify).
 */
export function diffusionLoss(
  unet: UNetModel,
  net: ControlNetHead | undefined,
  batch: DiffusionBatch,
  draw: DiffusionDraw,
  options: ControlOptions & { x0WeightCap?: number } = {},
): tf.Scalar {
  return tf.tidy(() => {
    const noisy = qSample(batch.latents, draw);
    const eps = controlledEps(unet, net, noisy, draw.timesteps, batch, options);
    const cap = options.x0WeightCap ?? 0;
    if (cap <= 0) return tf.losses.meanSquaredError(draw.noise, eps) as tf.Scalar;
    const weights = tf.tensor4d(
      draw.timesteps.map((t) => timestepWeight(t, cap)),
      [draw.timesteps.length, 1, 1, 1],
    );
    return tf.mean(tf.squaredDifference(draw.noise, eps).mul(weights)) as tf.Scalar;
  });
}
