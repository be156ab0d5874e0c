import type { AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { DPT_HYBRID_FILE, DptHybridNetwork, dptHybridKeys } from './dpt-hybrid.ts';
import { loadNetworkWeights, MidasModel, paramBytes } from './model.ts';

export { DPT_HYBRID_FILE } from './dpt-hybrid.ts';
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

/** The MiDaS depth preprocessors. */
// biome-ignore lint/suspicious/noExplicitAny: definitions of different model types share one list.
export const midasPreprocessors: PreprocessorDefinition<any>[] = [depthMidas];
