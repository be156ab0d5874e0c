import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import type { VaeDecoder } from '../models/vae.ts';
import { AdamW, GradientAccumulator, type ParamGroup } from './adamw.ts';
import { makeTrainable } from './checkpoint.ts';
import type { TrainingExample } from './dataset.ts';
import { type DiffusionBatch, diffusionLoss, drawDiffusion } from './diffusion.ts';
import { imageToLatent } from './latent.ts';
import { splitmix32 } from './random.ts';
import type { PromptEmbeddings } from './text-encoder.ts';

/** The examples of a dataset as stacked tensors (kept until `dispose`). */
export class TensorDataset {
  readonly size: number;
  /** Targets [N, H, W, 3] in [-1, 1]. */
  readonly targets: tf.Tensor4D;
  /** Sources (control maps) [N, H, W, 3] in [0, 1]. */
  readonly sources: tf.Tensor4D;
  /** Fixed-encoder latents of the targets [N, H/8, W/8, 4]. */
  readonly latents: tf.Tensor4D;
  readonly prompts: string[];

  constructor(examples: readonly TrainingExample[]) {
    if (examples.length === 0) throw new Error('the dataset is empty');
    const size = examples[0]!.size;
    this.size = examples.length;
    const n = examples.length;
    const pixels = size * size * 3;
    const targets = new Float32Array(n * pixels);
    const sources = new Float32Array(n * pixels);
    examples.forEach((e, i) => {
      if (e.size !== size) throw new Error('all examples must have the same size');
      targets.set(e.target, i * pixels);
      sources.set(e.source, i * pixels);
    });
    this.targets = tf.tensor4d(targets, [n, size, size, 3]);
    this.sources = tf.tensor4d(sources, [n, size, size, 3]);
    this.latents = imageToLatent(this.targets);
    this.prompts = examples.map((e) => e.prompt);
  }

  dispose(): void {
    tf.dispose([this.targets, this.sources, this.latents]);
  }
}

/** Options shared by every training job. */
export interface LoopOptions {
  steps: number;
  batchSize: number;
  /** Micro-batches summed per optimizer step (gradient accumulation). */
  accumulate?: number;
  /** Stop (and save) after this much wall-clock time. */
  maxMinutes?: number;
  seed: number;
  /** Step count already done (a resumed run): numbering, noise draws and the step budget continue from it. */
  firstStep?: number;
  /** JSON-lines log file; one line per logged step / evaluation. */
  logFile?: string;
  logEvery?: number;
  /** Called every `evalEvery` steps (and at the end) with the step; its numbers go into the log. */
  evaluate?: (step: number) => Promise<Record<string, number>>;
  evalEvery?: number;
  /** Called every `saveEvery` steps and at the end. */
  save?: (step: number) => Promise<void>;
  saveEvery?: number;
  onProgress?: (step: number, loss: number) => void;
}

/** What a training loop did. */
export interface LoopResult {
  steps: number;
  losses: number[];
  evaluations: { step: number; metrics: Record<string, number> }[];
  seconds: number;
}

async function logLine(file: string | undefined, record: Record<string, unknown>): Promise<void> {
  if (file) await appendFile(file, `${JSON.stringify(record)}\n`);
}

/**
 * The shared loop: per step, `accumulate` micro-batches of loss + gradients over the optimizer's variables,
 * summed, one AdamW update. Periodic evaluation and checkpoints; stops early at `maxMinutes`.
 */
export async function runLoop(
  optimizer: AdamW,
  microBatchLoss: (step: number, micro: number, random: () => number) => tf.Scalar,
  options: LoopOptions,
): Promise<LoopResult> {
  const started = performance.now();
  const random = splitmix32(options.seed);
  const accumulate = options.accumulate ?? 1;
  const variables = optimizer.variables;
  const losses: number[] = [];
  const evaluations: LoopResult['evaluations'] = [];
  if (options.logFile) await logLine(options.logFile, { event: 'start', time: new Date().toISOString() });
  const evaluate = async (step: number) => {
    if (!options.evaluate) return;
    const metrics = await options.evaluate(step);
    evaluations.push({ step, metrics });
    await logLine(options.logFile, { event: 'eval', step, ...metrics });
  };
  let step = options.firstStep ?? 0;
  if (options.evalEvery && step === 0) await evaluate(0);
  while (step < options.steps) {
    if (options.maxMinutes !== undefined && (performance.now() - started) / 60_000 > options.maxMinutes)
      break;
    const accumulator = new GradientAccumulator();
    let lossSum = 0;
    for (let micro = 0; micro < accumulate; micro++) {
      const { value, grads } = tf.variableGrads(() => microBatchLoss(step, micro, random), variables);
      lossSum += (await value.data())[0]!;
      value.dispose();
      accumulator.add(grads);
    }
    const grads = accumulator.takeMean();
    optimizer.apply(grads);
    tf.dispose(Object.values(grads));
    step++;
    const loss = lossSum / accumulate;
    losses.push(loss);
    options.onProgress?.(step, loss);
    if (step % (options.logEvery ?? 10) === 0) {
      await logLine(options.logFile, {
        event: 'step',
        step,
        loss,
        seconds: (performance.now() - started) / 1000,
      });
    }
    if (options.evalEvery && step % options.evalEvery === 0) await evaluate(step);
    if (options.save && options.saveEvery && step % options.saveEvery === 0) await options.save(step);
  }
  if (options.evalEvery && step % options.evalEvery !== 0) await evaluate(step);
  if (options.save) await options.save(step);
  const seconds = (performance.now() - started) / 1000;
  await logLine(options.logFile, { event: 'end', step, seconds });
  return { steps: step, losses, evaluations, seconds };
}

function batchIndices(random: () => number, size: number, count: number): tf.Tensor1D {
  return tf.tensor1d(
    Array.from({ length: count }, () => Math.floor(random() * size)),
    'int32',
  );
}

/** Options of the decoder job. */
export interface DecoderJobOptions extends LoopOptions {
  learningRate: number;
  /** Std of Gaussian noise added to the latents, so the decoder tolerates the sampler's small errors. */
  latentNoise?: number;
}

/** Trains the tiny-latent decoder: fixed-encoder latent -> image, MSE. */
export function trainDecoder(
  vae: VaeDecoder,
  data: TensorDataset,
  options: DecoderJobOptions,
): Promise<LoopResult> {
  const variables = [...makeTrainable(vae.params).values()];
  const optimizer = new AdamW([{ variables, learningRate: options.learningRate }], { weightDecay: 0 });
  return runLoop(
    optimizer,
    (_step, _micro, random) =>
      tf.tidy(() => {
        const idx = batchIndices(random, data.size, options.batchSize);
        let z = tf.gather(data.latents, idx) as tf.Tensor4D;
        if (options.latentNoise)
          z = z.add(tf.randomNormal(z.shape, 0, options.latentNoise, 'float32', random() * 1e9));
        const target = tf.gather(data.targets, idx);
        return tf.losses.meanSquaredError(target, vae.forward(z)) as tf.Scalar;
      }),
    options,
  ).finally(() => optimizer.dispose());
}

/** Options of the diffusion jobs (base UNet, ControlNet). */
export interface DiffusionJobOptions extends LoopOptions {
  learningRate: number;
  /** Probability of replacing a prompt by "" (the paper: 0.5; the released code: 0). */
  promptDrop?: number;
  weightDecay?: number;
  /** Base model only: per-timestep weight cap (see `timestepWeight`); 0 = plain l_simple. */
  x0WeightCap?: number;
}

function diffusionBatch(
  data: TensorDataset,
  embeddings: PromptEmbeddings,
  random: () => number,
  batchSize: number,
  promptDrop: number,
  withHint: boolean,
): DiffusionBatch {
  const picks = Array.from({ length: batchSize }, () => Math.floor(random() * data.size));
  const idx = tf.tensor1d(picks, 'int32');
  const prompts = picks.map((i) => (random() < promptDrop ? '' : data.prompts[i]!));
  return {
    latents: tf.gather(data.latents, idx) as tf.Tensor4D,
    context: embeddings.batch(prompts),
    hint: withHint ? (tf.gather(data.sources, idx) as tf.Tensor4D) : undefined,
  };
}

/**
 * The loop both jobs share: each micro-batch draws examples (with prompt drop, and the control maps when a
 * ControlNet trains), noise and timesteps, and takes the diffusion loss; the optimizer is disposed at the end.
 */
function runDiffusionLoop(
  optimizer: AdamW,
  unet: UNetModel,
  net: ControlNetHead | undefined,
  data: TensorDataset,
  embeddings: PromptEmbeddings,
  options: DiffusionJobOptions,
  job: { promptDrop: number; loss: Parameters<typeof diffusionLoss>[4] },
): Promise<LoopResult> {
  return runLoop(
    optimizer,
    (step, micro, random) =>
      tf.tidy(() => {
        const batch = diffusionBatch(
          data,
          embeddings,
          random,
          options.batchSize,
          job.promptDrop,
          net !== undefined,
        );
        const draw = drawDiffusion(options.seed, step * 64 + micro, batch.latents.shape);
        return diffusionLoss(unet, net, batch, draw, job.loss);
      }),
    options,
  ).finally(() => optimizer.dispose());
}

/** Trains a base UNet from its current weights (text-conditioned eps prediction on the fixed latents). */
export function trainBaseUNet(
  unet: UNetModel,
  data: TensorDataset,
  embeddings: PromptEmbeddings,
  options: DiffusionJobOptions,
): Promise<LoopResult> {
  const variables = [...makeTrainable(unet.params).values()];
  const optimizer = new AdamW([{ variables, learningRate: options.learningRate }], {
    weightDecay: options.weightDecay ?? 0,
  });
  return runDiffusionLoop(optimizer, unet, undefined, data, embeddings, options, {
    promptDrop: options.promptDrop ?? 0.1,
    loss: { x0WeightCap: options.x0WeightCap },
  });
}

/** Options of the ControlNet job (tutorial_train.py's knobs). */
export interface ControlNetJobOptions extends DiffusionJobOptions {
  /** Lock the whole base UNet (default true); false also trains its decoder half at `decoderLearningRate`. */
  sdLocked?: boolean;
  /** Learning rate of the UNet's output blocks when `sdLocked` is false (default learningRate / 10). */
  decoderLearningRate?: number;
  onlyMidControl?: boolean;
}

/** Whether a UNet parameter is in the decoder half (output_blocks and the `out` head), as cldm unlocks it. */
export function isUNetDecoderParam(name: string): boolean {
  return name.startsWith('output_blocks.') || name.startsWith('out.');
}

/**
 * Trains a ControlNet head against a locked base (cldm `ControlLDM.configure_optimizers`): the ControlNet's
 * parameters, plus the UNet decoder half when `sdLocked` is false. The base stays plain tensors (no gradients).
 */
export function trainControlNet(
  unet: UNetModel,
  net: ControlNetHead,
  data: TensorDataset,
  embeddings: PromptEmbeddings,
  options: ControlNetJobOptions,
): Promise<LoopResult> {
  const groups: ParamGroup[] = [
    { variables: [...makeTrainable(net.params).values()], learningRate: options.learningRate },
  ];
  if (options.sdLocked === false) {
    groups.push({
      variables: [...makeTrainable(unet.params, isUNetDecoderParam).values()],
      learningRate: options.decoderLearningRate ?? options.learningRate / 10,
    });
  }
  const optimizer = new AdamW(groups, { weightDecay: options.weightDecay ?? 0 });
  return runDiffusionLoop(optimizer, unet, net, data, embeddings, options, {
    promptDrop: options.promptDrop ?? 0,
    loss: { onlyMidControl: options.onlyMidControl },
  });
}

/** Writes a JSON file, creating its folder. */
export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
