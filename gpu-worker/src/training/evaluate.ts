import { canny, type Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ControlNetHead } from '../models/controlnet.ts';
import { ControlNetPipeline, type PipelineModels } from '../pipelines/controlnet-pipeline.ts';
import type { SamplerName } from '../schedulers/sampler.ts';
import { CIRCLE_COLOURS, type CircleSample, COLOUR_NAMES, type ColourName, circleSample } from './dataset.ts';
import type { PromptEmbeddings } from './text-encoder.ts';

/** Dataset seed of the held-out conditions (training sets use other seeds). */
export const HELD_OUT_SEED = 424_242;

/** Canny thresholds of the evaluation (the gradio canny app's defaults). */
export const EVAL_CANNY = { low: 100, high: 200 } as const;

/** The fixed held-out conditions: samples 0..count-1 of the held-out seed. */
export function heldOutConditions(count: number, size: number): CircleSample[] {
  return Array.from({ length: count }, (_, i) => circleSample(HELD_OUT_SEED, i, size));
}

/** Precision, recall and F1 of two edge masks. */
export interface EdgeScore {
  precision: number;
  recall: number;
  f1: number;
}

/** Whether mask `b` has a set pixel within Euclidean distance `tolerance` of (x, y). */
function near(
  mask: Uint8Array,
  width: number,
  height: number,
  x: number,
  y: number,
  tolerance: number,
): boolean {
  const r = Math.floor(tolerance);
  for (let dy = -r; dy <= r; dy++) {
    const yy = y + dy;
    if (yy < 0 || yy >= height) continue;
    for (let dx = -r; dx <= r; dx++) {
      const xx = x + dx;
      if (xx < 0 || xx >= width || dx * dx + dy * dy > tolerance * tolerance) continue;
      if (mask[yy * width + xx]) return true;
    }
  }
  return false;
}

/**
 * Edge F1 with a distance tolerance (BSDS-style, without one-to-one matching): precision = share of predicted
 * edge pixels within `tolerance` px of a reference edge pixel, recall = the converse. Masks are 0 / non-zero.
 */
export function edgeF1(
  predicted: Uint8Array,
  reference: Uint8Array,
  width: number,
  height: number,
  tolerance = 2,
): EdgeScore {
  let predictedCount = 0;
  let predictedHits = 0;
  let referenceCount = 0;
  let referenceHits = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (predicted[i]) {
        predictedCount++;
        if (near(reference, width, height, x, y, tolerance)) predictedHits++;
      }
      if (reference[i]) {
        referenceCount++;
        if (near(predicted, width, height, x, y, tolerance)) referenceHits++;
      }
    }
  }
  const precision = predictedCount ? predictedHits / predictedCount : 0;
  const recall = referenceCount ? referenceHits / referenceCount : 0;
  const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1 };
}

/** The named colour nearest (Euclidean RGB) to a colour. */
export function nearestColour(rgb: readonly number[]): ColourName {
  let best: ColourName = COLOUR_NAMES[0]!;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const name of COLOUR_NAMES) {
    const c = CIRCLE_COLOURS[name];
    const d = (c[0] - rgb[0]!) ** 2 + (c[1] - rgb[1]!) ** 2 + (c[2] - rgb[2]!) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = name;
    }
  }
  return best;
}

/**
 * The circle and background colours of a generated image: median RGB of the pixels well inside (distance to the
 * circle > 3 px) and well outside the condition's circle.
 */
export function readColours(
  image: Image8<3>,
  condition: CircleSample,
): { circle: ColourName; background: ColourName } {
  const { centerX, centerY, radius } = condition.spec;
  const inside: number[][] = [[], [], []];
  const outside: number[][] = [[], [], []];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const d = Math.hypot(x + 0.5 - centerX, y + 0.5 - centerY) - radius;
      const bucket = d < -3 ? inside : d > 3 ? outside : undefined;
      if (!bucket) continue;
      for (let c = 0; c < 3; c++) bucket[c]!.push(image.data[(y * image.width + x) * 3 + c]!);
    }
  }
  const median = (values: number[]) => {
    values.sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)] ?? 0;
  };
  return {
    circle: nearestColour(inside.map(median)),
    background: nearestColour(outside.map(median)),
  };
}

/** Scores of one generated image against its condition. */
export interface ConditionScore extends EdgeScore {
  circle: ColourName;
  background: ColourName;
  promptOk: boolean;
}

/** Scores a generated image: canny edges vs the control outline (2 px), and the colours vs the prompt. */
export function scoreGeneration(image: Image8<3>, condition: CircleSample): ConditionScore {
  const edges = canny(image, EVAL_CANNY);
  const reference = new Uint8Array(image.width * image.height);
  for (let i = 0; i < reference.length; i++) reference[i] = condition.source.data[i * 3]!;
  const score = edgeF1(edges.data, reference, image.width, image.height, 2);
  const colours = readColours(image, condition);
  return {
    ...score,
    ...colours,
    promptOk: colours.circle === condition.spec.circle && colours.background === condition.spec.background,
  };
}

/** Aggregate fidelity over a set of conditions. */
export interface FidelityReport {
  count: number;
  /** Mean control F1 (canny of output vs control outline, 2 px tolerance). */
  controlF1: number;
  /** Share of generations whose circle and background colours are the named ones. */
  promptFidelity: number;
  scores: ConditionScore[];
  /** The generated images (RGB HWC bytes), one per condition. */
  images: Uint8Array[];
}

/** Options of {@link evaluateFidelity}. */
export interface EvaluateOptions {
  models: PipelineModels;
  embeddings: PromptEmbeddings;
  /** Without a ControlNet the base model alone is scored (the chance baseline for control F1). */
  net?: ControlNetHead;
  conditions: CircleSample[];
  steps?: number;
  /** The sampler (default `ddim`). */
  scheduler?: SamplerName;
  guidanceScale?: number;
  seed?: number;
  /** Conditions generated per pipeline call. */
  batch?: number;
}

/**
 * Generates one image per condition through the worker's own pipeline (the sampler, CFG, ControlNet residuals) and
 * scores control and prompt fidelity.
 */
export async function evaluateFidelity(options: EvaluateOptions): Promise<FidelityReport> {
  const pipeline = new ControlNetPipeline(options.models);
  const batch = options.batch ?? 16;
  const scores: ConditionScore[] = [];
  const images: Uint8Array[] = [];
  const uncontext = options.embeddings.get('');
  for (let start = 0; start < options.conditions.length; start += batch) {
    const group = options.conditions.slice(start, start + batch);
    const size = group[0]!.target.width;
    const context = options.embeddings.batch(group.map((c) => c.prompt));
    const hint = tf.tensor4d(
      Float32Array.from(group.flatMap((c) => Array.from(c.source.data, (v) => v / 255))),
      [group.length, size, size, 3],
    );
    try {
      const result = await pipeline.generate({
        context,
        uncontext,
        controls: options.net ? [{ net: options.net, hint }] : [],
        width: size,
        height: size,
        steps: options.steps ?? 20,
        scheduler: options.scheduler,
        guidanceScale: options.guidanceScale ?? 3,
        eta: 0,
        seed: (options.seed ?? 7) + start,
        numImages: group.length,
        guessMode: false,
      });
      result.images.forEach((data, i) => {
        images.push(data);
        scores.push(scoreGeneration({ width: size, height: size, channels: 3, data }, group[i]!));
      });
    } finally {
      tf.dispose([context, hint]);
    }
  }
  const mean = (f: (s: ConditionScore) => number) => scores.reduce((a, s) => a + f(s), 0) / scores.length;
  return {
    count: scores.length,
    controlF1: mean((s) => s.f1),
    promptFidelity: mean((s) => (s.promptOk ? 1 : 0)),
    scores,
    images,
  };
}

/** A contact sheet PNG: control maps on the top row, generations below (at most `columns` conditions). */
export function sampleSheet(
  conditions: readonly CircleSample[],
  images: readonly Uint8Array[],
  columns = 8,
): Image8<3> {
  const size = conditions[0]!.target.width;
  const count = Math.min(columns, images.length);
  const width = size * count;
  const data = new Uint8Array(width * size * 2 * 3);
  for (let i = 0; i < count; i++) {
    for (let y = 0; y < size; y++) {
      const row = y * size * 3;
      data.set(conditions[i]!.source.data.subarray(row, row + size * 3), (y * width + i * size) * 3);
      data.set(images[i]!.subarray(row, row + size * 3), ((y + size) * width + i * size) * 3);
    }
  }
  return { width, height: size * 2, channels: 3, data };
}
