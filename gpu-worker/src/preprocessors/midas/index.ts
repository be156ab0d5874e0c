import type { AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { DPT_HYBRID_FILE, DptHybridNetwork, dptHybridKeys } from './dpt-hybrid.ts';
import { MIDAS_SMALL_FILE, MidasSmallNetwork, midasSmallKeys } from './midas-small.ts';
import { loadNetworkWeights, MidasModel, paramBytes } from './model.ts';

export { DPT_HYBRID_FILE } from './dpt-hybrid.ts';
export { MIDAS_SMALL_FILE } from './midas-small.ts';
export { MidasModel } from './model.ts';

/** MiDaS v3 DPT-Hybrid, what ControlNet 1.1's MidasDetector loads. */
export const dptHybridSpec: AnnotatorModelSpec<MidasModel> = {
  key: 'midas_dpt_hybrid',
  files: [DPT_HYBRID_FILE],
  async load(paths) {
    const network = new DptHybridNetwork();
    await loadNetworkWeights(network.params, paths[DPT_HYBRID_FILE]!, dptHybridKeys, () =>
      network.params.dispose(),
    );
    network.standardize();
    return new MidasModel(network, paramBytes(network.params));
  },
};

/** `depth_midas`: ControlNet 1.1's Depth_Midas (MidasDetector, DPT-Hybrid); no parameters besides the resolution. */
export const depthMidas: PreprocessorDefinition<MidasModel> = {
  name: 'depth_midas',
  model: dptHybridSpec,
  async run({ engine, image, model }) {
    return { map: await model.detect(engine, image) };
  },
};

/** MiDaS v2.1 small (MidasNet_small, EfficientNet-Lite3): api.py's `midas_v21_small` model type. */
export const midasSmallSpec: AnnotatorModelSpec<MidasModel> = {
  key: 'midas_v21_small',
  files: [MIDAS_SMALL_FILE],
  async load(paths) {
    const network = new MidasSmallNetwork();
    await loadNetworkWeights(network.params, paths[MIDAS_SMALL_FILE]!, midasSmallKeys, () =>
      network.params.dispose(),
    );
    network.foldBatchNorms();
    return new MidasModel(network, paramBytes(network.params));
  },
};

/**
 * `depth_midas_small`: MidasDetector's pipeline (input / 127.5 - 1, no resize, min/max normalisation to uint8)
 * on MiDaS v2.1 small instead of DPT-Hybrid; a fast depth map. No parameters besides the resolution.
 */
export const depthMidasSmall: PreprocessorDefinition<MidasModel> = {
  name: 'depth_midas_small',
  model: midasSmallSpec,
  async run({ engine, image, model }) {
    return { map: await model.detect(engine, image) };
  },
};

/** The MiDaS depth preprocessors. */
// biome-ignore lint/suspicious/noExplicitAny: definitions of different model types share one list.
export const midasPreprocessors: PreprocessorDefinition<any>[] = [depthMidas, depthMidasSmall];
