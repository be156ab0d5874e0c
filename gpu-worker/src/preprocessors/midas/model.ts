import type { Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type { Network } from '../../engine/network.ts';
import type { ParamStore } from '../../models/params.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { loadParams } from '../../weights/load.ts';
import { openWeightFile } from '../../weights/open.ts';
import type { AnnotatorModel } from '../types.ts';
import { depthToMap, midasInput } from './depth-map.ts';

/** A loaded MiDaS depth network (DPT-Hybrid or v2.1 small) and how MidasDetector runs it. */
export class MidasModel implements AnnotatorModel {
  constructor(
    readonly network: Network & { disposeConstants?(): void },
    readonly bytes: number,
  ) {}

  get networks(): readonly Network[] {
    return [this.network];
  }

  /** The raw prediction [H * W] for an RGB image (the detector's input normalisation included). */
  async predict(engine: ModelEngine, image: Image8<3>): Promise<Float32Array> {
    const input = tf.tensor4d(midasInput(image), [1, image.height, image.width, 3]);
    try {
      const [depth] = await engine.runNetwork(this.network, [input]);
      try {
        return depth!.dataSync() as Float32Array;
      } finally {
        depth!.dispose();
      }
    } finally {
      input.dispose();
    }
  }

  /** MidasDetector.__call__: prediction, then min/max normalisation to uint8 (HWC3). */
  async detect(engine: ModelEngine, image: Image8<3>): Promise<Image8<3>> {
    return depthToMap(await this.predict(engine, image), image.width, image.height);
  }

  dispose(): void {
    this.network.disposeConstants?.();
    this.network.params.dispose();
  }
}

/** Bytes held by a loaded ParamStore (float32). */
export function paramBytes(params: ParamStore): number {
  let bytes = 0;
  for (const [, value] of params.entries()) bytes += value.size * 4;
  return bytes;
}

/**
 * Loads `network`'s weights from `path` (a .pt/.pth checkpoint or .safetensors in the checkpoint's key layout);
 * errors name the file. The network is disposed when loading fails.
 */
export async function loadNetworkWeights(
  params: ParamStore,
  path: string,
  mapping: KeyMapping,
  onFail: () => void,
): Promise<void> {
  try {
    const file = await openWeightFile(path);
    try {
      await loadParams(params, file, mapping);
    } finally {
      await file.close();
    }
  } catch (error) {
    onFail();
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot load MiDaS weights from ${path}: ${message}`, { cause: error });
  }
}
