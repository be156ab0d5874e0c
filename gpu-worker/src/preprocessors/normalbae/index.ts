import type { Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { loadParams, WeightLoadError } from '../../weights/load.ts';
import { openWeightFile } from '../../weights/open.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { NormalBaeNetwork } from './network.ts';

export { NormalBaeNetwork } from './network.ts';

/** The checkpoint's name in lllyasviel/Annotators. */
export const NORMALBAE_FILE = 'scannet.pt';

/**
 * Where NNET's parameters live in scannet.pt: `torch.save({'model': state_dict, 'iter': n})` of a
 * DistributedDataParallel model, so keys carry `module.`; the original `load_checkpoint` strips it (bare keys are
 * accepted too). BatchNorm `num_batches_tracked` counters are not weights.
 */
export const NORMALBAE_KEYS: KeyMapping = {
  fileKeys: (name) => [`module.${name}`, name],
  belongs: (key) => !key.endsWith('.num_batches_tracked'),
};

/** Loaded normal_bae weights. */
export class NormalBaeModel implements AnnotatorModel {
  readonly networks: readonly NormalBaeNetwork[];
  readonly bytes: number;
  constructor(readonly network: NormalBaeNetwork) {
    this.networks = [network];
    let bytes = 0;
    for (const [, tensor] of network.params.entries()) bytes += tensor.size * 4;
    this.bytes = bytes;
  }

  dispose(): void {
    this.network.dispose();
  }
}

/** Loads scannet.pt (or a .safetensors with the same keys) into a {@link NormalBaeNetwork}. */
export async function loadNormalBae(path: string | undefined): Promise<NormalBaeModel> {
  if (!path) throw new Error(`normal_bae needs the weight file ${NORMALBAE_FILE}`);
  const network = new NormalBaeNetwork();
  try {
    const file = await openWeightFile(path).catch((error: unknown) => {
      throw new Error(`cannot read ${NORMALBAE_FILE} (${path}): ${(error as Error).message}`, {
        cause: error,
      });
    });
    try {
      await loadParams(network.params, file, NORMALBAE_KEYS);
    } catch (error) {
      if (!(error instanceof WeightLoadError)) throw error;
      const { missing, unexpected, misshaped } = error.report;
      const listed = (keys: string[]) => `${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ', ...' : ''}`;
      throw new Error(
        `${path} is not the normal_bae checkpoint ${NORMALBAE_FILE}: ${missing.length} missing (${listed(missing)}), ` +
          `${unexpected.length} unexpected (${listed(unexpected)}), ${misshaped.length} mis-shaped keys`,
        { cause: error },
      );
    } finally {
      await file.close();
    }
    network.prepare();
    return new NormalBaeModel(network);
  } catch (error) {
    network.dispose();
    throw error;
  }
}

/** normal_bae's model: scannet.pt. */
export const normalBaeModelSpec: AnnotatorModelSpec<NormalBaeModel> = {
  key: 'normalbae',
  files: [NORMALBAE_FILE],
  load: (paths) => loadNormalBae(paths[NORMALBAE_FILE]),
};

const MEAN = [0.485, 0.456, 0.406].map(Math.fround);
const STD = [0.229, 0.224, 0.225].map(Math.fround);

/**
 * The detector's input: `torch.from_numpy(img).float() / 255.0` then torchvision `Normalize` (sub mean, div std),
 * float32 at each step like PyTorch, as an NHWC [1, H, W, 3] tensor.
 */
export function normalBaeInput(image: Image8<3>): tf.Tensor4D {
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < out.length; i++) {
    const c = i % 3;
    out[i] = Math.fround(Math.fround(Math.fround(image.data[i]! / 255) - MEAN[c]!) / STD[c]!);
  }
  return tf.tensor4d(out, [1, image.height, image.width, 3]);
}

/**
 * The detector's post-processing of out_res1 (NHWC, 4 channels): normal x, y, z -> ((n + 1) * 0.5).clip(0, 1),
 * * 255, clip, astype(uint8) (truncation), channels in the network's order; kappa dropped.
 */
export function normalBaeMap(out: Float32Array, height: number, width: number): Image8<3> {
  const data = new Uint8Array(height * width * 3);
  for (let p = 0; p < height * width; p++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(Math.max(Math.fround(Math.fround(out[p * 4 + c]! + 1) * 0.5), 0), 1);
      data[p * 3 + c] = Math.trunc(Math.min(Math.max(Math.fround(v * 255), 0), 255));
    }
  }
  return { width, height, channels: 3, data };
}

/** Runs the network on an RGB image (height and width multiples of 8): out_res8 and out_res1, NHWC float. */
export async function runNormalBae(
  engine: ModelEngine,
  network: NormalBaeNetwork,
  image: Image8<3>,
): Promise<{ res8: tf.Tensor; res1: tf.Tensor }> {
  const input = normalBaeInput(image);
  try {
    const [res8, res1] = await engine.runNetwork(network, [input]);
    return { res8: res8!, res1: res1! };
  } finally {
    input.dispose();
  }
}

/** ControlNet 1.1 `normal_bae` (NormalBaeDetector): surface normals as an RGB map, no parameters of its own. */
export const normalBae: PreprocessorDefinition<NormalBaeModel> = {
  name: 'normal_bae',
  model: normalBaeModelSpec,
  async run({ engine, image, model }) {
    const { res8, res1 } = await runNormalBae(engine, model.network, image);
    try {
      return { map: normalBaeMap((await res1.data()) as Float32Array, image.height, image.width) };
    } finally {
      tf.dispose([res8, res1]);
    }
  },
};

/** The normal_bae family's preprocessors. */
export const normalbaePreprocessors: PreprocessorDefinition[] = [normalBae];
