/**
 * The pieces of the image-input modes: img2img (start from the noised encoded image part-way down the
 * sampler's schedule, as diffusers' StableDiffusionControlNetImg2ImgPipeline.get_timesteps) and inpainting
 * (ControlNet 1.1's gradio_inpaint.py: a Gaussian-blurred pixel mask, its INTER_AREA latent mask blended into
 * the latents before every step as ldm's DDIMSampler(x0, mask) does, and the decoded image composited over the
 * input with the pixel mask so unmasked pixels equal the input exactly).
 */
import * as tf from '@tensorflow/tfjs';
import { alphasCumprod } from '../schedulers/ddim.ts';
import type { Sampler } from '../schedulers/sampler.ts';
import { vpOf } from '../schedulers/schedule.ts';

/**
 * The first step of `total` to run for an img2img `strength` in (0, 1]: diffusers' get_timesteps,
 * init = min(int(total * strength), total), start = total - init; at least one step is always run (diffusers
 * raises instead when int(total * strength) is 0).
 */
export function img2imgStartStep(total: number, strength: number): number {
  if (!(strength > 0 && strength <= 1)) throw new RangeError(`strength must be in (0, 1], got ${strength}`);
  const init = Math.min(Math.floor(total * strength), total);
  return total - Math.max(1, init);
}

/**
 * Clean latents `x0` noised to the level of `step` in the sampler's own space (diffusers' scheduler.add_noise):
 * sqrt(abar_t) x0 + sqrt(1 - abar_t) n for DDIM and LCM (the model timestep's alpha), x0 + sigma n for Euler
 * ancestral (its VE form), alpha_t x0 + sigma_t n of the step's sigma for the multistep solvers (VP form).
 */
export function noiseLatents(
  sampler: Sampler,
  step: number,
  x0: tf.Tensor4D,
  noise: tf.Tensor4D,
): tf.Tensor4D {
  return tf.tidy(() => {
    switch (sampler.name) {
      case 'ddim':
      case 'lcm': {
        const abar = alphasCumprod()[sampler.timesteps[step]!]!;
        return x0.mul(Math.sqrt(abar)).add(noise.mul(Math.sqrt(1 - abar))) as tf.Tensor4D;
      }
      case 'euler_a':
        return x0.add(noise.mul(sampler.sigmas![step]!)) as tf.Tensor4D;
      case 'unipc':
      case 'dpmpp_2m':
      case 'dpmpp_2m_karras': {
        const { alpha, sigmaT } = vpOf(sampler.sigmas![step]!);
        return x0.mul(alpha).add(noise.mul(sigmaT)) as tf.Tensor4D;
      }
    }
  });
}

/** OpenCV's BORDER_REFLECT_101 index into 0..n-1. */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const j = ((i % period) + period) % period;
  return j < n ? j : period - j;
}

/**
 * cv2.GaussianBlur(mask, (0, 0), sigma) on a float32 single-channel image: kernel size
 * round(8 sigma + 1) | 1, separable, BORDER_REFLECT_101. sigma <= 0 returns a copy.
 */
export function gaussianBlurMask(
  mask: Float32Array,
  width: number,
  height: number,
  sigma: number,
): Float32Array {
  if (!(sigma > 0)) return Float32Array.from(mask);
  const size = Math.round(sigma * 8 + 1) | 1;
  const half = (size - 1) / 2;
  const kernel = new Float64Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    kernel[i] = Math.exp(-((i - half) ** 2) / (2 * sigma * sigma));
    sum += kernel[i]!;
  }
  for (let i = 0; i < size; i++) kernel[i]! /= sum;
  const rows = new Float32Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = 0; k < size; k++) acc += kernel[k]! * mask[y * width + reflect101(x + k - half, width)]!;
      rows[y * width + x] = acc;
    }
  }
  const out = new Float32Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let k = 0; k < size; k++) acc += kernel[k]! * rows[reflect101(y + k - half, height) * width + x]!;
      out[y * width + x] = acc;
    }
  }
  return out;
}

/** cv2.resize(mask, (w / 8, h / 8), INTER_AREA): the mean of each 8x8 block (sizes are multiples of 8). */
export function latentMask(mask: Float32Array, width: number, height: number): Float32Array {
  const w = width / 8;
  const h = height / 8;
  const out = new Float32Array(w * h);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out[((y / 8) | 0) * w + ((x / 8) | 0)]! += mask[y * width + x]!;
  }
  for (let i = 0; i < out.length; i++) out[i]! /= 64;
  return out;
}

/**
 * The original's final composite: decoded * 127.5 + 127.5 blended with the input by the blurred pixel mask
 * (1 = generated), then clipped and truncated to bytes. Where the mask is 0 the input byte comes back exactly.
 */
export function compositeInpaint(
  decoded: ArrayLike<number>,
  input: Uint8Array,
  mask: Float32Array,
): Uint8Array {
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const m = mask[(i / 3) | 0]!;
    const value = (decoded[i]! * 127.5 + 127.5) * m + input[i]! * (1 - m);
    out[i] = Math.floor(Math.min(255, Math.max(0, value)));
  }
  return out;
}

/** {@link compositeInpaint} for an already-byte generated image (after a resize): floor of the blend. */
export function compositeBytes(generated: Uint8Array, input: Uint8Array, mask: Float32Array): Uint8Array {
  const out = new Uint8Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const m = mask[(i / 3) | 0]!;
    out[i] = Math.floor(Math.min(255, Math.max(0, generated[i]! * m + input[i]! * (1 - m))));
  }
  return out;
}

/** ControlNet 1.1 inpaint hint (gradio_inpaint.py): the image in [0, 1] with pixels whose blurred mask > 0.5 at -1. */
export function inpaintHint(input: Uint8Array, mask: Float32Array): Float32Array {
  const out = new Float32Array(input.length);
  for (let i = 0; i < input.length; i++) out[i] = mask[(i / 3) | 0]! > 0.5 ? -1 : input[i]! / 255;
  return out;
}
