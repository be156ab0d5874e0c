import type { KeyMapping } from '../../weights/keymap.ts';
import { loadParams } from '../../weights/load.ts';
import { openWeightFile } from '../../weights/open.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { UperNetUniFormer } from './network.ts';
import { segment } from './segment.ts';

export { ADE20K_PALETTE } from './palette.ts';
export {
  ADE20K_TEST_SCALE,
  argmaxClasses,
  paletteMap,
  prepareInput,
  rescaleSize,
  segment,
} from './segment.ts';
export { UperNetUniFormer };

/** UniformerDetector's checkpoint (huggingface.co/lllyasviel/Annotators). */
export const UNIFORMER_WEIGHTS = 'upernet_global_small.pth';

/**
 * The mmseg checkpoint layout: `{meta, state_dict}` (the reader takes `state_dict`), keys `backbone.*` and
 * `decode_head.*`, a `module.` prefix stripped as mmcv's load_checkpoint does. The auxiliary head and BatchNorm
 * `num_batches_tracked` counters are in the file but unused at inference, so they are not "unexpected".
 */
export const uniformerKeyMapping: KeyMapping = {
  fileKeys: (name) => [name, `module.${name}`],
  belongs: (key) => {
    const rest = key.startsWith('module.') ? key.slice('module.'.length) : key;
    return (
      (rest.startsWith('backbone.') || rest.startsWith('decode_head.')) &&
      !rest.endsWith('num_batches_tracked')
    );
  },
};

/** The loaded UperNet + UniFormer-S. */
export class UniformerModel implements AnnotatorModel {
  readonly bytes: number;
  readonly networks: readonly UperNetUniFormer[];
  constructor(readonly net: UperNetUniFormer) {
    let floats = 0;
    for (const shape of net.params.specs.values()) floats += shape.reduce((a, b) => a * b, 1);
    this.bytes = floats * 4;
    this.networks = [net];
  }

  dispose(): void {
    this.net.dispose();
  }
}

/** Loads upernet_global_small.pth (or a .safetensors with the same keys); errors name the file. */
export async function loadUniformer(path: string): Promise<UniformerModel> {
  const net = new UperNetUniFormer();
  try {
    const file = await openWeightFile(path).catch((err: Error) => {
      throw new Error(`cannot open ${UNIFORMER_WEIGHTS} at ${path}: ${err.message}`, { cause: err });
    });
    try {
      await loadParams(net.params, file, uniformerKeyMapping).catch((err: Error) => {
        throw new Error(
          `${UNIFORMER_WEIGHTS} (${path}) is not the UperNet UniFormer-S checkpoint: ${err.message}`,
          {
            cause: err,
          },
        );
      });
    } finally {
      await file.close();
    }
    net.prepare();
    return new UniformerModel(net);
  } catch (err) {
    net.dispose();
    throw err;
  }
}

/** How the worker loads the seg_uniformer weights. */
export const uniformerModelSpec: AnnotatorModelSpec<UniformerModel> = {
  key: 'uniformer',
  files: [UNIFORMER_WEIGHTS],
  async load(paths) {
    const path = paths[UNIFORMER_WEIGHTS];
    if (!path) throw new Error(`seg_uniformer needs the weight file ${UNIFORMER_WEIGHTS}`);
    return loadUniformer(path);
  },
};

/** seg_uniformer (1.1 app: Seg_UFADE20K): ADE20K semantic segmentation painted with the ADE20K palette. */
export const segUniformer: PreprocessorDefinition<UniformerModel> = {
  name: 'seg_uniformer',
  model: uniformerModelSpec,
  async run({ engine, image, model }) {
    return { map: (await segment(engine, model.net, image)).map };
  },
};

// biome-ignore lint/suspicious/noExplicitAny: the worker's list mixes preprocessors of different model types.
export const segPreprocessors: PreprocessorDefinition<any>[] = [segUniformer];
