import type { ControlType } from '@contour/shared/contracts';
import { type ControlMap, type Image8, resizeImageTo } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import { type ModelEngine, tfModelEngine } from '../engine/model-engine.ts';
import type { ControlNetModel } from '../models/controlnet.ts';
import { ControlNetPipeline, type PipelineOptions } from '../pipelines/controlnet-pipeline.ts';
import { compositeBytes, gaussianBlurMask } from '../pipelines/image-modes.ts';
import { nativeSamplingSize, resizeControlMapMax, type Size } from '../pipelines/native-resolution.ts';
import { gaussianNoise } from '../pipelines/noise.ts';
import { type EncodedControl, sampleLatents } from '../pipelines/sample.ts';
import type { PreprocessorParams, PreprocessorResult } from '../preprocessors/types.ts';
import type { ModelRegistry } from '../registry/registry.ts';
import { actualSamplerSteps, type SamplerName } from '../schedulers/sampler.ts';
import { PromptEmbeddingCache } from '../text/cache.ts';
import { promptIds, weightPromptStates } from '../text/encode-prompt.ts';
import { tokenizePrompt } from '../text/prompt.ts';

/** One control unit of a job, its map already made: float RGB [0, 1] HWC at the job's size. */
export interface PreparedControl {
  type: ControlType;
  map: ControlMap;
  strength: number;
  start: number;
  end: number;
}

/** What the engine needs of one job; the sampling settings are shared by every job of a batch. */
export interface EngineJob {
  prompt: string;
  negativePrompt: string;
  seed: number;
  numImages: number;
  controls: PreparedControl[];
  /** img2img / inpaint input at the job's size (such a job runs alone). */
  init?: EngineInit;
}

/** An image-mode job's input: RGB bytes and repaint weights at the job's size. */
export interface EngineInit {
  image: Image8<3>;
  strength: number;
  /** Repaint weights in [0, 1] per pixel (unblurred); inpaint when set. */
  mask?: Float32Array;
  maskBlur: number;
}

/** Settings that must be equal for jobs to share a batch. */
export interface SamplingSettings {
  width: number;
  height: number;
  steps: number;
  /** The sampler (default `ddim`). */
  scheduler?: SamplerName;
  guidanceScale: number;
  eta: number;
  guessMode: boolean;
}

/** Per-step callback: `step` of `total` steps finished for the whole batch. */
export type StepCallback = (step: number, total: number, stepMs: number) => void;

/** One job's output: RGB images and stage timings (shared by the batch). */
export interface EngineJobResult {
  images: Image8<3>[];
  steps: number;
  timingsMs: Record<string, number>;
}

/**
 * What the service runs jobs on. A batch is one or more jobs with equal {@link SamplingSettings} and equal
 * control schedules; results come back in the same order.
 */
export interface GenerationEngine {
  /** Name of the runtime in use: the tfjs backend (`wasm`, `tensorflow`) or `onnxruntime-<device>`. */
  readonly backend: string;
  /** Steps actually run for a requested step count of a sampler (default `ddim`). */
  actualSteps(steps: number, scheduler?: SamplerName): number;
  run(
    jobs: EngineJob[],
    settings: SamplingSettings,
    options: { onStep?: StepCallback; signal?: AbortSignal },
  ): Promise<EngineJobResult[]>;
  /**
   * Runs a network preprocessor on an image already HWC3 + resized to its detect resolution (the worker's
   * annotators); absent on engines without them.
   */
  preprocess?(name: string, image: Image8<3>, params: PreprocessorParams): Promise<PreprocessorResult>;
}

/** An init image and mask resized from the job's size to the sampling size (the built-in model's 64). */
function resizeInit(init: EngineInit, from: Size, to: Size): EngineInit {
  const image = resizeImageTo(init.image, to.width, to.height);
  if (!init.mask) return { ...init, image };
  const maskBytes = Uint8Array.from(init.mask, (v) => Math.round(v * 255));
  const mask = resizeImageTo({ ...from, channels: 1, data: maskBytes }, to.width, to.height);
  // The blur is in pixels of the requested size: scale it with the image.
  const maskBlur = (init.maskBlur * to.width) / from.width;
  return { ...init, image, mask: Float32Array.from(mask.data, (v) => v / 255), maskBlur };
}

/** Latent tile size and overlap (latent pixels) used when CONTOUR_TILE_LATENT_PIXELS caps the latent. */
export const TILE_LATENT_SIZE = 64;
export const TILE_LATENT_OVERLAP = 16;

/**
 * Latent tiling from the environment: CONTOUR_TILE_LATENT_PIXELS (latent h*w above which the model calls run in
 * 64x64 latent windows overlapping by 16, i.e. 512px tiles; unset = never tile).
 */
export function tilingFromEnv(env: NodeJS.ProcessEnv): PipelineOptions['tiling'] {
  const raw = env['CONTOUR_TILE_LATENT_PIXELS'];
  if (!raw) return undefined;
  const maxLatentPixels = Number(raw);
  if (!Number.isInteger(maxLatentPixels) || maxLatentPixels < 1) {
    throw new Error(`CONTOUR_TILE_LATENT_PIXELS must be a positive integer, got "${raw}"`);
  }
  return { maxLatentPixels, size: TILE_LATENT_SIZE, overlap: TILE_LATENT_OVERLAP };
}

/** Bytes of prompt embeddings kept between jobs. */
const PROMPT_CACHE_BYTES = 32 * 1024 * 1024;

/** Byte image from a decoded [-1, 1] image as the pipeline makes them: clip(x * 127.5 + 127.5), truncated. */
function decodedToImage(decoded: tf.Tensor3D): Image8<3> {
  const [height, width] = decoded.shape;
  const scaled = tf.tidy(() => decoded.mul(127.5).add(127.5).clipByValue(0, 255));
  const values = scaled.dataSync();
  scaled.dispose();
  const data = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = Math.floor(values[i]!);
  return { width, height, channels: 3, data };
}

/**
 * The generation engine: CLIP from the registry's base (with a prompt-embedding cache), heads leased from the
 * registry, a single job through {@link ControlNetPipeline}, a micro-batch of jobs through the same sampler
 * with each job's own seeded noise stacked along the batch axis (so a job's noise does not depend on what it
 * is batched with). The model calls run on `models` (tfjs or ONNX Runtime); the registry's weights live in
 * tfjs tensors either way.
 */
export class TfGenerationEngine implements GenerationEngine {
  private readonly pipeline: ControlNetPipeline;
  private readonly promptCache = new PromptEmbeddingCache({ maxBytes: PROMPT_CACHE_BYTES });
  readonly backend: string;
  /** Latent tiling over a memory cap (CONTOUR_TILE_LATENT_PIXELS), for single jobs and batches alike. */
  private readonly tiling = tilingFromEnv(process.env);

  constructor(
    readonly registry: ModelRegistry,
    readonly models: ModelEngine = tfModelEngine,
  ) {
    const { info } = models;
    this.backend = info.engine === 'tfjs' ? tf.getBackend() : `${info.engine}-${info.device}`;
    this.pipeline = new ControlNetPipeline(
      { unet: registry.base.unet, vaeDecoder: registry.base.vae, vaeEncoder: registry.base.vaeEncoder },
      { engine: models, tiling: this.tiling },
    );
  }

  actualSteps(steps: number, scheduler: SamplerName = 'ddim'): number {
    return actualSamplerSteps(scheduler, steps);
  }

  /** [1, tokens, dim] embedding of a prompt (cached; the caller disposes it). */
  private async embed(prompt: string): Promise<tf.Tensor3D> {
    const key = { model: this.registry.base.name, prompt };
    const cached = this.promptCache.get<tf.Tensor3D>(key);
    if (cached) return cached;
    const { tokenizer, clip } = this.registry.base;
    const tokenized = tokenizePrompt(tokenizer, prompt);
    const ids = promptIds(tokenized);
    const hidden = await this.models.encodeText(clip, ids);
    const embedding = weightPromptStates(hidden, tokenized);
    tf.dispose([ids, hidden]);
    this.promptCache.set(key, embedding);
    return embedding;
  }

  /**
   * The size jobs of `requested` size are sampled at: the request's own, or for a base trained at one resolution
   * (the built-in model, 64x64) that resolution, resized back afterwards.
   */
  samplingSize(requested: Size): Size {
    const { nativeResolution, unet } = this.registry.base;
    if (nativeResolution === undefined) return requested;
    const multiple = 8 * 2 ** (unet.config.channel_mult.length - 1);
    return nativeSamplingSize(requested, nativeResolution, multiple);
  }

  async run(
    jobs: EngineJob[],
    settings: SamplingSettings,
    options: { onStep?: StepCallback; signal?: AbortSignal } = {},
  ): Promise<EngineJobResult[]> {
    const sampled = this.samplingSize(settings);
    if (sampled.width === settings.width && sampled.height === settings.height) {
      return this.runAtSize(jobs, settings, options);
    }
    const shrinkStarted = performance.now();
    const scaledJobs = jobs.map((job) => ({
      ...job,
      controls: job.controls.map((control) => ({
        ...control,
        map: resizeControlMapMax(control.map, sampled.width, sampled.height),
      })),
      ...(job.init ? { init: resizeInit(job.init, settings, sampled) } : {}),
    }));
    const shrinkMs = performance.now() - shrinkStarted;
    const results = await this.runAtSize(scaledJobs, { ...settings, ...sampled }, options);
    // `resize`: the control maps shrunk for the batch plus this job's images grown back.
    return results.map((result, i) => {
      const started = performance.now();
      const init = jobs[i]!.init;
      // Inpaint: composite again at the requested size so unmasked pixels stay the input's exactly.
      const pixelMask =
        init?.mask && gaussianBlurMask(init.mask, settings.width, settings.height, init.maskBlur);
      const images = result.images.map((image) => {
        const grown = resizeImageTo(image, settings.width, settings.height);
        if (!init || !pixelMask) return grown;
        return { ...grown, data: compositeBytes(grown.data, init.image.data, pixelMask) };
      });
      const resize = shrinkMs + performance.now() - started;
      return { ...result, images, timingsMs: { ...result.timingsMs, resize } };
    });
  }

  /** Runs jobs at exactly `settings.width` x `settings.height`. */
  private async runAtSize(
    jobs: EngineJob[],
    settings: SamplingSettings,
    options: { onStep?: StepCallback; signal?: AbortSignal },
  ): Promise<EngineJobResult[]> {
    if (jobs.length === 0) return [];
    const started = performance.now();
    const types = jobs[0]!.controls.map((control) => control.type);
    const lease = await this.registry.acquire(types);
    const owned: tf.Tensor[] = [];
    try {
      const headsDone = performance.now();
      const contexts: tf.Tensor3D[] = [];
      const uncontexts: tf.Tensor3D[] = [];
      for (const job of jobs) {
        contexts.push(await this.embed(job.prompt));
        uncontexts.push(await this.embed(job.negativePrompt));
      }
      owned.push(...contexts, ...uncontexts);
      await Promise.all(contexts.map((c) => c.data()));
      const textDone = performance.now();
      const stageBase = { heads: headsDone - started, text: textDone - headsDone };
      let lastStep = performance.now();
      const onProgress = (progress: { step: number; totalSteps: number }) => {
        const now = performance.now();
        options.onStep?.(progress.step, progress.totalSteps, now - lastStep);
        lastStep = now;
      };
      if (jobs.length === 1) {
        const job = jobs[0]!;
        const result = await this.pipeline.generate({
          context: contexts[0]!,
          uncontext: uncontexts[0]!,
          controls: job.controls.map((control) => ({
            net: lease.heads.get(control.type)!,
            hint: control.map,
            strength: control.strength,
            start: control.start,
            end: control.end,
          })),
          ...settings,
          seed: job.seed,
          numImages: job.numImages,
          ...(job.init
            ? {
                init: {
                  image: job.init.image.data,
                  strength: job.init.strength,
                  maskBlur: job.init.maskBlur,
                  ...(job.init.mask ? { mask: job.init.mask } : {}),
                },
              }
            : {}),
          onProgress,
          signal: options.signal,
        });
        const { width, height } = settings;
        return [
          {
            images: result.images.map((data) => ({ width, height, channels: 3 as const, data })),
            steps: result.steps,
            timingsMs: {
              ...stageBase,
              hint: result.timings.hintMs,
              denoise: result.timings.denoiseMs,
              decode: result.timings.decodeMs,
            },
          },
        ];
      }
      if (jobs.some((job) => job.init)) throw new Error('image-mode jobs run one at a time');
      return await this.runBatch(jobs, settings, contexts, uncontexts, lease.heads, stageBase, {
        onProgress,
        signal: options.signal,
      });
    } finally {
      tf.dispose(owned);
      lease.release();
    }
  }

  /** Several jobs as one latent batch: per-image contexts, hints and noise stacked in job order. */
  private async runBatch(
    jobs: EngineJob[],
    settings: SamplingSettings,
    contexts: tf.Tensor3D[],
    uncontexts: tf.Tensor3D[],
    heads: ReadonlyMap<ControlType, ControlNetModel>,
    stageBase: Record<string, number>,
    hooks: { onProgress: (p: { step: number; totalSteps: number }) => void; signal?: AbortSignal },
  ): Promise<EngineJobResult[]> {
    const { width, height } = settings;
    const owned: tf.Tensor[] = [];
    const repeatEach = <T extends tf.Tensor>(tensors: T[]): T => {
      const rows = tensors.flatMap((t, j) => Array<T>(jobs[j]!.numImages).fill(t));
      const stacked = tf.concat(rows, 0) as T;
      owned.push(stacked);
      return stacked;
    };
    try {
      const started = performance.now();
      const first = jobs[0]!;
      const controls: EncodedControl[] = [];
      for (const [u, unit] of first.controls.entries()) {
        const net = heads.get(unit.type)!;
        const encoded: tf.Tensor4D[] = [];
        for (const job of jobs) {
          const hint = tf.tensor4d(job.controls[u]!.map.data, [1, height, width, 3]);
          encoded.push(await this.models.encodeHint(net, hint));
          hint.dispose();
        }
        owned.push(...encoded);
        controls.push({
          net,
          encodedHint: repeatEach(encoded),
          strength: unit.strength,
          start: unit.start,
          end: unit.end,
        });
      }
      await Promise.all(controls.map((c) => c.encodedHint.data()));
      const hintDone = performance.now();
      const latentSize = (height / 8) * (width / 8) * 4;
      const noiseFor = (stream: number) => {
        const total = jobs.reduce((n, job) => n + job.numImages, 0);
        const out = new Float32Array(total * latentSize);
        let offset = 0;
        for (const job of jobs) {
          out.set(gaussianNoise(job.seed, stream, job.numImages * latentSize), offset);
          offset += job.numImages * latentSize;
        }
        return out;
      };
      const total = jobs.reduce((n, job) => n + job.numImages, 0);
      const xT = tf.tensor4d(noiseFor(0), [total, height / 8, width / 8, 4]);
      owned.push(xT);
      const latents = await sampleLatents({
        unet: this.registry.base.unet,
        xT,
        context: repeatEach(contexts),
        uncontext: repeatEach(uncontexts),
        guidanceScale: settings.guidanceScale,
        controls,
        steps: settings.steps,
        scheduler: settings.scheduler,
        eta: settings.eta,
        guessMode: settings.guessMode,
        stepNoise: (step) => noiseFor(step + 1),
        ...(this.tiling && (settings.width / 8) * (settings.height / 8) > this.tiling.maxLatentPixels
          ? { tiles: { size: this.tiling.size, overlap: this.tiling.overlap } }
          : {}),
        engine: this.models,
        onProgress: hooks.onProgress,
        signal: hooks.signal,
      });
      owned.push(latents);
      const denoiseDone = performance.now();
      const images: Image8<3>[] = [];
      for (let i = 0; i < total; i++) {
        const latent = latents.slice([i, 0, 0, 0], [1, -1, -1, -1]);
        const decoded = await this.models.decodeLatents(this.registry.base.vae, latent);
        const image = decoded.squeeze([0]) as tf.Tensor3D;
        images.push(decodedToImage(image));
        tf.dispose([latent, decoded, image]);
      }
      const decodeDone = performance.now();
      const steps = this.actualSteps(settings.steps, settings.scheduler);
      const timingsMs = {
        ...stageBase,
        hint: hintDone - started,
        denoise: denoiseDone - hintDone,
        decode: decodeDone - denoiseDone,
      };
      let offset = 0;
      return jobs.map((job) => {
        const own = images.slice(offset, offset + job.numImages);
        offset += job.numImages;
        return { images: own, steps, timingsMs };
      });
    } finally {
      tf.dispose(owned);
    }
  }
}
