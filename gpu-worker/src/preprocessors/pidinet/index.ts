import type { Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { edgeToImage, imageToFloat, safeStep } from '../hed/edge.ts';
import { loadAnnotatorParams, paramBytes, prefixedKeys } from '../hed/weights.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { PidinetNetwork } from './network.ts';

/** The PiDiNet weight file as lllyasviel/Annotators names it. */
export const PIDINET_FILE = 'table5_pidinet.pth';

/** Loaded PiDiNet weights (pixel-difference convs converted), shared by softedge_pidinet and softedge_pidisafe. */
export class PidinetModel implements AnnotatorModel {
  readonly networks: readonly PidinetNetwork[];
  readonly bytes: number;

  constructor(readonly network: PidinetNetwork) {
    this.networks = [network];
    // The raw checkpoint tensors plus the converted kernels (at most 25/9 of the depthwise ones): count both.
    this.bytes = paramBytes(network.params) * 2;
  }

  dispose(): void {
    this.network.dispose();
  }
}

/**
 * Loads table5_pidinet.pth as PidiNetDetector does: its `state_dict` entry with `module.` stripped (bare keys are
 * accepted too), then converts the pixel-difference convs to vanilla kernels.
 */
export async function loadPidinet(path: string | undefined): Promise<PidinetModel> {
  const network = new PidinetNetwork();
  await loadAnnotatorParams(network.params, PIDINET_FILE, path, prefixedKeys('module.'));
  network.prepare();
  return new PidinetModel(network);
}

/** PiDiNet's model spec (cache key `pidinet`). */
export const pidinetModelSpec: AnnotatorModelSpec<PidinetModel> = {
  key: 'pidinet',
  files: [PIDINET_FILE],
  load: (paths) => loadPidinet(paths[PIDINET_FILE]),
};

/** The edge map (H*W float32 in [0, 1]) PiDiNet returns last, for an RGB image (fed BGR / 255 as the detector does). */
export async function pidinetEdge(
  engine: ModelEngine,
  model: PidinetModel,
  image: Image8<3>,
): Promise<Float32Array> {
  const input = tf.tensor4d(imageToFloat(image, [2, 1, 0], 255), [1, image.height, image.width, 3]);
  const outputs = await engine.runNetwork(model.network, [input]);
  try {
    return (await outputs[0]!.data()) as Float32Array;
  } finally {
    tf.dispose([input, ...outputs]);
  }
}

/** PidiNetDetector.__call__ from the edge map: optional safe_step, then `(edge * 255).clip(0, 255)` as uint8. */
export function pidinetMap(edge: Float32Array, width: number, height: number, safe: boolean): Image8<3> {
  return edgeToImage(safe ? edge.map(safeStep) : edge, width, height, true);
}

function pidinetPreprocessor(name: string, safe: boolean): PreprocessorDefinition<PidinetModel> {
  return {
    name,
    model: pidinetModelSpec,
    async run({ engine, image, model }) {
      const edge = await pidinetEdge(engine, model, image);
      return { map: pidinetMap(edge, image.width, image.height, safe) };
    },
  };
}

/** softedge_pidinet and softedge_pidisafe (ControlNet 1.1 gradio_softedge "SoftEdge_PIDI" / "SoftEdge_PIDI_safe"). */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds definitions of every model type.
export const pidinetPreprocessors: PreprocessorDefinition<any>[] = [
  pidinetPreprocessor('softedge_pidinet', false),
  pidinetPreprocessor('softedge_pidisafe', true),
];
