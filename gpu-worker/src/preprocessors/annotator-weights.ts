import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from '../models/params.ts';
import type { KeyMapping } from '../weights/keymap.ts';
import { loadParams, type WeightFile } from '../weights/load.ts';
import { openWeightFile } from '../weights/open.ts';

/** An annotator weight file that is absent, unreadable or does not fit its network; the message names the file. */
export class AnnotatorWeightsError extends Error {
  override readonly name = 'AnnotatorWeightsError';
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`annotator weight file ${file}: ${message}`, options);
  }
}

/**
 * The checkpoint's own key names, also found under any of `prefixes` (e.g. `module.` of a DataParallel save);
 * BatchNorm's `num_batches_tracked` counters belong to no parameter and are ignored.
 */
export function annotatorLayout(prefixes: readonly string[] = []): KeyMapping {
  return {
    fileKeys: (name) => [name, ...prefixes.map((prefix) => prefix + name)],
    belongs: (key) => !key.endsWith('.num_batches_tracked'),
  };
}

/** Opens `paths[fileName]` and loads `params` from it; every failure is an {@link AnnotatorWeightsError}. */
export async function loadAnnotatorWeights(
  params: ParamStore,
  fileName: string,
  paths: Readonly<Record<string, string>>,
  mapping: KeyMapping,
): Promise<void> {
  const path = paths[fileName];
  if (!path) throw new AnnotatorWeightsError(fileName, 'no path given for it');
  let file: WeightFile;
  try {
    file = await openWeightFile(path);
  } catch (cause) {
    throw new AnnotatorWeightsError(fileName, `cannot be read at ${path}: ${String(cause)}`, { cause });
  }
  try {
    await loadParams(params, file, mapping);
  } catch (cause) {
    params.dispose();
    throw new AnnotatorWeightsError(fileName, `does not fit the network (${path}): ${String(cause)}`, {
      cause,
    });
  } finally {
    await file.close();
  }
}

/** Per-channel scale and shift of a folded BatchNorm. */
export interface FoldedNorm {
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
}

/**
 * An eval-mode BatchNorm2d (`bn` prefix: weight, bias, running_mean, running_var) and the optional bias of the conv
 * before it, folded into y = conv(x) * scale + shift (computed in float64, rounded once to float32).
 */
export function foldBatchNorm(params: ParamStore, bn: string, convBias?: string, eps = 1e-5): FoldedNorm {
  const read = (name: string) => params.get(name).dataSync() as Float32Array;
  const gamma = read(`${bn}.weight`);
  const beta = read(`${bn}.bias`);
  const mean = read(`${bn}.running_mean`);
  const variance = read(`${bn}.running_var`);
  const bias = convBias ? read(convBias) : undefined;
  const scale = new Float32Array(gamma.length);
  const shift = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    const s = gamma[c]! / Math.sqrt(variance[c]! + eps);
    scale[c] = s;
    shift[c] = beta[c]! + ((bias ? bias[c]! : 0) - mean[c]!) * s;
  }
  return { scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) };
}

/** Bytes of float32 weights a store holds (an annotator model's memory estimate). */
export function paramBytes(params: ParamStore): number {
  let bytes = 0;
  for (const [, value] of params.entries()) bytes += value.size * 4;
  return bytes;
}
