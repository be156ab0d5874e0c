import type { Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { edgeToImage, imageToFloat, safeStep } from './edge.ts';
import { HedNetwork } from './network.ts';
import { loadAnnotatorParams, paramBytes, prefixedKeys } from './weights.ts';

/** The HED weight file as lllyasviel/Annotators names it. */
export const HED_FILE = 'ControlNetHED.pth';

/** Loaded HED weights, shared by softedge_hed and softedge_hedsafe. */
export class HedModel implements AnnotatorModel {
  readonly networks: readonly HedNetwork[];
  readonly bytes: number;

  constructor(readonly network: HedNetwork) {
    this.networks = [network];
    this.bytes = paramBytes(network.params);
  }

  dispose(): void {
    this.network.dispose();
  }
}

/** Loads ControlNetHED.pth (a plain state dict, as HEDdetector's `load_state_dict(torch.load(...))`). */
export async function loadHed(path: string | undefined): Promise<HedModel> {
  const network = new HedNetwork();
  await loadAnnotatorParams(network.params, HED_FILE, path, prefixedKeys());
  network.prepare();
  return new HedModel(network);
}

/** HED's model spec (cache key `hed`). */
export const hedModelSpec: AnnotatorModelSpec<HedModel> = {
  key: 'hed',
  files: [HED_FILE],
  load: (paths) => loadHed(paths[HED_FILE]),
};

/** The fused logit map (H*W float32) of HEDdetector for an RGB image: the network's first output. */
export async function hedLogits(
  engine: ModelEngine,
  model: HedModel,
  image: Image8<3>,
): Promise<Float32Array> {
  const input = tf.tensor4d(imageToFloat(image, [0, 1, 2]), [1, image.height, image.width, 3]);
  const outputs = await engine.runNetwork(model.network, [input]);
  try {
    return (await outputs[0]!.data()) as Float32Array;
  } finally {
    tf.dispose([input, ...outputs]);
  }
}

/** HEDdetector.__call__ from the fused logits: sigmoid (float64), optional safe_step, then uint8. */
export function hedMap(logits: Float32Array, width: number, height: number, safe: boolean): Image8<3> {
  const edge = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) {
    const e = 1 / (1 + Math.exp(-logits[i]!));
    edge[i] = safe ? safeStep(e) : e;
  }
  // safe_step returns float32, so the `* 255.0` then runs in float32; the plain sigmoid map is float64.
  return edgeToImage(edge, width, height, safe);
}

function hedPreprocessor(name: string, safe: boolean): PreprocessorDefinition<HedModel> {
  return {
    name,
    model: hedModelSpec,
    async run({ engine, image, model }) {
      const logits = await hedLogits(engine, model, image);
      return { map: hedMap(logits, image.width, image.height, safe) };
    },
  };
}

/** softedge_hed and softedge_hedsafe (ControlNet 1.1 gradio_softedge "SoftEdge_HED" / "SoftEdge_HED_safe"). */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds definitions of every model type.
export const hedPreprocessors: PreprocessorDefinition<any>[] = [
  hedPreprocessor('softedge_hed', false),
  hedPreprocessor('softedge_hedsafe', true),
];
