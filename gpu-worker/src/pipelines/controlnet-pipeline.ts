import * as tf from '@tensorflow/tfjs';
import { type ModelEngine, tfModelEngine } from '../engine/model-engine.ts';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import type { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import { actualSamplerSteps, type SamplerName } from '../schedulers/sampler.ts';
import {
  compositeInpaint,
  gaussianBlurMask,
  img2imgStartStep,
  latentMask,
  noiseLatents,
} from './image-modes.ts';
import { gaussianNoise, streamOf } from './noise.ts';
import { type EncodedControl, type StepProgress, sampleLatents } from './sample.ts';

/** A control image: float RGB in [0, 1], row-major HWC, at the output resolution. */
export interface HintImage {
  data: Float32Array;
  width: number;
  height: number;
}

/** One ControlNet unit of a request. */
export interface ControlUnitInput {
  net: ControlNetHead;
  /** [1 or numImages, height, width, 3] in [0, 1], or a single image. */
  hint: tf.Tensor4D | HintImage;
  /** Residual scale 0..2 (default 1). */
  strength?: number;
  /** Fraction of steps before which the unit is off (default 0). */
  start?: number;
  /** Fraction of steps after which the unit is off (default 1). */
  end?: number;
}

/**
 * An input image to start from (img2img) and optionally a mask of what to repaint (inpaint).
 * The image is encoded to its scaled posterior mean.
 */
export interface InitInput {
  /** RGB bytes, row-major HWC, at the output resolution. */
  image: Uint8Array;
  /**
   * How far to noise the image, (0, 1]: the last int(steps * strength) steps of the sampler's schedule run.
   * Default 1 (img2img: noised to the first timestep; inpaint: pure noise, as diffusers and the original do).
   */
  strength?: number;
  /** Repaint weights in [0, 1] per pixel (1 = repaint), width * height values, before blurring. */
  mask?: Float32Array;
  /** Gaussian sigma in pixels applied to the mask (the original's "Mask Blur", default 5; 0 = none). */
  maskBlur?: number;
}

/** Default {@link InitInput.maskBlur}: ControlNet 1.1 gradio_inpaint's slider default. */
export const DEFAULT_MASK_BLUR = 5;

/** Noise stream of the per-step re-noised init latents of inpaint blending (ldm's q_sample draws fresh noise). */
const BLEND_STREAM = streamOf('inpaint-blend');

/** A generation request; text embeddings come from the (separate) CLIP text encoder. */
export interface GenerateRequest {
  /** Prompt embeddings [1 or numImages, tokens, dim]. */
  context: tf.Tensor3D;
  /** Negative-prompt embeddings [1 or numImages, tokens, dim]. */
  uncontext: tf.Tensor3D;
  controls: ControlUnitInput[];
  /** Output size in pixels, multiples of 8 (the original apps use multiples of 64). */
  width: number;
  height: number;
  /** Requested steps; the real count is `actualSamplerSteps(scheduler, steps)` (differs only for DDIM). */
  steps: number;
  /** The sampler (default `ddim`). */
  scheduler?: SamplerName;
  guidanceScale: number;
  eta: number;
  seed: number;
  numImages: number;
  guessMode: boolean;
  /** img2img / inpaint input (needs `models.vaeEncoder`). */
  init?: InitInput;
  onProgress?: (progress: StepProgress) => void;
  signal?: AbortSignal;
}

/** Wall-clock timings of one generation in milliseconds. */
export interface GenerationTimings {
  hintMs: number;
  denoiseMs: number;
  perStepMs: number;
  decodeMs: number;
  totalMs: number;
}

/** The images of one generation. */
export interface GenerateResult {
  /** One RGB HWC uint8 buffer per image. */
  images: Uint8Array[];
  width: number;
  height: number;
  /** Steps actually run. */
  steps: number;
  seed: number;
  timings: GenerationTimings;
}

/** Raised for a request the pipeline cannot run. */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  readonly code = 'pipeline_invalid_request';
}

/** The loaded models of the product: SD1.5 UNet, VAE decoder, and any ControlNets passed per request. */
export interface PipelineModels {
  unet: UNetModel;
  vaeDecoder: VaeDecoder;
  /** Needed for img2img and inpaint requests. */
  vaeEncoder?: VaeEncoder;
}

/** Options of {@link ControlNetPipeline}. */
export interface PipelineOptions {
  /** Run conditional and unconditional passes as one batch (default true). */
  batchGuidance?: boolean;
  /** The runtime of the model calls (default: tfjs on the active backend). */
  engine?: ModelEngine;
  /**
   * Tile the model calls when the latent (h/8 * w/8) exceeds `maxLatentPixels` (upscale passes on small
   * devices): `size` x `size` latent windows overlapping by `overlap` (see SampleRequest.tiles).
   */
  tiling?: { maxLatentPixels: number; size: number; overlap: number };
}

/** Byte image from a decoded [-1, 1] tensor as the original apps do: clip(x * 127.5 + 127.5), then truncate. */
function toBytes(image: tf.Tensor3D): Uint8Array {
  const scaled = tf.tidy(() => image.mul(127.5).add(127.5).clipByValue(0, 255));
  const values = scaled.dataSync();
  scaled.dispose();
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.floor(values[i]!);
  return out;
}

/**
 * Text-embeddings-in, images-out ControlNet generation (the gradio apps' process()): hint encoders once per
 * request, the sampler with CFG and the ControlNets, VAE decode. Holds the models; owns no per-request state.
 */
export class ControlNetPipeline {
  constructor(
    readonly models: PipelineModels,
    readonly options: PipelineOptions = {},
  ) {}

  private validate(request: GenerateRequest): void {
    const fail = (message: string) => {
      throw new PipelineError(message);
    };
    const { width, height, numImages } = request;
    if (
      !Number.isInteger(width) ||
      !Number.isInteger(height) ||
      width % 8 ||
      height % 8 ||
      width < 8 ||
      height < 8
    ) {
      fail(`width and height must be positive multiples of 8, got ${width}x${height}`);
    }
    if (!Number.isInteger(numImages) || numImages < 1) fail(`numImages must be a positive integer`);
    for (const [name, embedding] of [
      ['context', request.context],
      ['uncontext', request.uncontext],
    ] as const) {
      if (embedding.rank !== 3 || (embedding.shape[0] !== 1 && embedding.shape[0] !== numImages)) {
        fail(`${name} must be [1 or numImages, tokens, dim], got [${embedding.shape.join(', ')}]`);
      }
    }
    request.controls.forEach((unit, i) => {
      const [h, w, c] =
        unit.hint instanceof tf.Tensor ? unit.hint.shape.slice(1) : [unit.hint.height, unit.hint.width, 3];
      if (h !== height || w !== width || c !== 3) fail(`control ${i}: hint must be ${height}x${width}x3`);
      if (!(unit.hint instanceof tf.Tensor) && unit.hint.data.length !== height * width * 3) {
        fail(`control ${i}: hint data must hold ${height * width * 3} floats`);
      }
      const { strength = 1, start = 0, end = 1 } = unit;
      if (!(strength >= 0 && strength <= 2)) fail(`control ${i}: strength must be in [0, 2]`);
      if (!(start >= 0 && end <= 1 && start < end)) fail(`control ${i}: need 0 <= start < end <= 1`);
    });
    const { init } = request;
    if (init) {
      if (!this.models.vaeEncoder) fail('this pipeline has no VAE encoder for an init image');
      if (init.image.length !== width * height * 3) fail(`init image must be ${width}x${height} RGB bytes`);
      const { strength = 1, maskBlur = DEFAULT_MASK_BLUR } = init;
      if (!(strength > 0 && strength <= 1)) fail(`init strength must be in (0, 1], got ${strength}`);
      if (!(maskBlur >= 0 && maskBlur <= 64)) fail(`mask blur must be in [0, 64], got ${maskBlur}`);
      if (init.mask && init.mask.length !== width * height) fail(`mask must hold ${width * height} values`);
    }
  }

  /**
   * Encodes the init image (scaled posterior mean, repeated over the batch) and, for inpaint, blurs the mask
   * and makes the latent keep-mask (1 - INTER_AREA of the blurred mask) as gradio_inpaint.py does.
   */
  private async prepareInit(
    init: InitInput,
    request: GenerateRequest,
    engine: ModelEngine,
    owned: tf.Tensor[],
  ) {
    const { width, height, numImages } = request;
    const pixels = tf.tidy(() =>
      tf.tensor4d(init.image, [1, height, width, 3], 'int32').toFloat().div(127.5).sub(1),
    ) as tf.Tensor4D;
    owned.push(pixels);
    const encoded = await engine.encodeMean(this.models.vaeEncoder!, pixels);
    owned.push(encoded);
    const latents = numImages === 1 ? encoded : (tf.concat(Array(numImages).fill(encoded), 0) as tf.Tensor4D);
    if (latents !== encoded) owned.push(latents);
    if (!init.mask) return { latents };
    const pixelMask = gaussianBlurMask(init.mask, width, height, init.maskBlur ?? DEFAULT_MASK_BLUR);
    const repaint = latentMask(pixelMask, width, height);
    const keep = tf.tidy(() => tf.sub(1, tf.tensor4d(repaint, [1, height / 8, width / 8, 1]))) as tf.Tensor4D;
    owned.push(keep);
    return { latents, pixelMask, keep };
  }

  /** Runs one request; resolves to RGB images, rejects with GenerationAbortedError if `signal` aborts. */
  async generate(request: GenerateRequest): Promise<GenerateResult> {
    this.validate(request);
    const { init } = request;
    const scheduledSteps = actualSamplerSteps(request.scheduler ?? 'ddim', request.steps);
    const startStep = init ? img2imgStartStep(scheduledSteps, init.strength ?? 1) : 0;
    const steps = scheduledSteps - startStep;
    const started = performance.now();
    const engine = this.options.engine ?? tfModelEngine;
    const { width, height, numImages, seed } = request;
    const latentShape: [number, number, number, number] = [numImages, height / 8, width / 8, 4];
    const owned: tf.Tensor[] = [];
    const repeat = <T extends tf.Tensor>(t: T): T => {
      if (t.shape[0] === numImages) return t;
      const repeated = tf.concat(Array<T>(numImages).fill(t), 0) as T;
      owned.push(repeated);
      return repeated;
    };
    try {
      const controls: EncodedControl[] = [];
      for (const unit of request.controls) {
        const hint =
          unit.hint instanceof tf.Tensor ? unit.hint : tf.tensor4d(unit.hint.data, [1, height, width, 3]);
        if (hint !== unit.hint) owned.push(hint);
        const encodedHint = await engine.encodeHint(unit.net, hint);
        owned.push(encodedHint);
        controls.push({
          net: unit.net,
          encodedHint: repeat(encodedHint),
          strength: unit.strength ?? 1,
          start: unit.start ?? 0,
          end: unit.end ?? 1,
        });
      }
      await Promise.all(controls.map((c) => c.encodedHint.data()));
      const hintDone = performance.now();
      const xT = tf.tensor4d(
        gaussianNoise(
          seed,
          0,
          latentShape.reduce((a, b) => a * b, 1),
        ),
        latentShape,
      );
      owned.push(xT);
      const modes = init ? await this.prepareInit(init, request, engine, owned) : undefined;
      const initLatents = modes?.latents;
      const keep = modes?.keep;
      const latents = await sampleLatents({
        unet: this.models.unet,
        xT,
        context: repeat(request.context),
        uncontext: repeat(request.uncontext),
        guidanceScale: request.guidanceScale,
        controls,
        steps: request.steps,
        scheduler: request.scheduler,
        eta: request.eta,
        guessMode: request.guessMode,
        stepNoise: (step, count) => gaussianNoise(seed, step + 1, count),
        // img2img: the encoded image noised with x_T's noise to the first step run (diffusers' add_noise);
        // inpaint at strength 1 starts from pure noise as diffusers (is_strength_max) and the original do.
        start:
          initLatents && !(init?.mask && (init.strength ?? 1) === 1)
            ? { step: startStep, latents: (sampler) => noiseLatents(sampler, startStep, initLatents, xT) }
            : undefined,
        blend:
          initLatents && keep
            ? (sampler, step, x) => {
                const noise = tf.tensor4d(
                  gaussianNoise(seed, (BLEND_STREAM + step) >>> 0, x.size),
                  latentShape,
                );
                return noiseLatents(sampler, step, initLatents, noise)
                  .mul(keep)
                  .add(x.mul(tf.sub(1, keep)));
              }
            : undefined,
        ...(this.options.tiling && (width / 8) * (height / 8) > this.options.tiling.maxLatentPixels
          ? { tiles: { size: this.options.tiling.size, overlap: this.options.tiling.overlap } }
          : {}),
        batchGuidance: this.options.batchGuidance ?? true,
        engine,
        onProgress: request.onProgress,
        signal: request.signal,
      });
      owned.push(latents);
      const denoiseDone = performance.now();
      const images: Uint8Array[] = [];
      // Decode one image at a time: the decoder's full-resolution activations dominate memory.
      for (let i = 0; i < numImages; i++) {
        const latent = latents.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        const decoded = await engine.decodeLatents(this.models.vaeDecoder, latent);
        const image = decoded.squeeze([0]) as tf.Tensor3D;
        images.push(
          modes?.pixelMask && init
            ? compositeInpaint(await image.data(), init.image, modes.pixelMask)
            : toBytes(image),
        );
        tf.dispose([latent, decoded, image]);
      }
      const finished = performance.now();
      return {
        images,
        width,
        height,
        steps,
        seed,
        timings: {
          hintMs: hintDone - started,
          denoiseMs: denoiseDone - hintDone,
          perStepMs: (denoiseDone - hintDone) / Math.max(1, steps),
          decodeMs: finished - denoiseDone,
          totalMs: finished - started,
        },
      };
    } finally {
      tf.dispose(owned);
    }
  }
}
