import { hwc3, type Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { annotatorLayout, loadAnnotatorWeights, paramBytes } from '../annotator-weights.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { LineartNetwork } from './network.ts';

/** Realistic lineart weights, huggingface.co/lllyasviel/Annotators (sk_model.pth). */
export const LINEART_WEIGHTS = 'sk_model.pth';
/** Coarse lineart weights, huggingface.co/lllyasviel/Annotators (sk_model2.pth). */
export const LINEART_COARSE_WEIGHTS = 'sk_model2.pth';

/** One loaded lineart generator. */
export interface LineartModel extends AnnotatorModel {
  readonly network: LineartNetwork;
}

async function loadGenerator(
  fileName: string,
  paths: Readonly<Record<string, string>>,
): Promise<LineartModel> {
  const network = new LineartNetwork(fileName === LINEART_WEIGHTS ? 'lineart' : 'lineart-coarse');
  await loadAnnotatorWeights(network.params, fileName, paths, annotatorLayout());
  return {
    network,
    bytes: paramBytes(network.params),
    networks: [network],
    dispose: () => network.params.dispose(),
  };
}

/** sk_model.pth (LineartDetector's `model`). */
export const lineartModel: AnnotatorModelSpec<LineartModel> = {
  key: 'lineart',
  files: [LINEART_WEIGHTS],
  load: (paths) => loadGenerator(LINEART_WEIGHTS, paths),
};

/** sk_model2.pth (LineartDetector's `model_coarse`). */
export const lineartCoarseModel: AnnotatorModelSpec<LineartModel> = {
  key: 'lineart_coarse',
  files: [LINEART_COARSE_WEIGHTS],
  load: (paths) => loadGenerator(LINEART_COARSE_WEIGHTS, paths),
};

/** The generator's output for an RGB image: [H, W] float data in (0, 1) (LineartDetector's `line` before *255). */
export async function lineartOutput(engine: ModelEngine, network: LineartNetwork, image: Image8<3>) {
  const { width, height, data } = image;
  // torch.from_numpy(image).float() / 255.0 (float32 division, which double-then-round reproduces).
  const input = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) input[i] = Math.fround(data[i]! / 255);
  const x = tf.tensor4d(input, [1, height, width, 3]);
  let outputs: tf.Tensor[];
  try {
    outputs = await engine.runNetwork(network, [x]);
  } finally {
    x.dispose();
  }
  const [out] = outputs as [tf.Tensor4D];
  const [, h, w] = out.shape;
  const values = (await out.data()) as Float32Array;
  for (const t of outputs) t.dispose();
  return { data: values, height: h, width: w };
}

/** (line * 255.0).clip(0, 255).astype(np.uint8): float32 product, then truncation. */
export function lineToUint8(line: Float32Array): Uint8Array {
  const out = new Uint8Array(line.length);
  for (let i = 0; i < line.length; i++)
    out[i] = Math.trunc(Math.min(255, Math.max(0, Math.fround(line[i]! * 255))));
  return out;
}

/** 255 - map: the uint8 form of the `1 - map / 255` control the 1.1 lineart apps feed ControlNet. */
export function invertMap(map: Uint8Array): Uint8Array {
  return map.map((v) => 255 - v);
}

/**
 * LineartDetector.__call__ (the generator on RGB / 255, output * 255 as uint8: dark lines on white for the real
 * weights, what gradio_lineart.py shows), then inverted as the app feeds ControlNet (`1 - map / 255`) and as A1111
 * returns it (`255 - result`): white lines on black, HWC3, the control map itself.
 */
async function runLineart(engine: ModelEngine, model: LineartModel, image: Image8<3>) {
  const line = await lineartOutput(engine, model.network, image);
  const map = invertMap(lineToUint8(line.data));
  return { map: hwc3({ width: line.width, height: line.height, channels: 1, data: map }) };
}

/** `lineart_realistic`: LineartDetector(coarse=False) (gradio_lineart.py "Lineart"), inverted (the control). */
export const lineartRealisticPreprocessor: PreprocessorDefinition<LineartModel> = {
  name: 'lineart_realistic',
  model: lineartModel,
  run: ({ engine, image, model }) => runLineart(engine, model, image),
};

/** `lineart_coarse`: LineartDetector(coarse=True) (gradio_lineart.py "Lineart_Coarse"), inverted (the control). */
export const lineartCoarsePreprocessor: PreprocessorDefinition<LineartModel> = {
  name: 'lineart_coarse',
  model: lineartCoarseModel,
  run: ({ engine, image, model }) => runLineart(engine, model, image),
};

/** The lineart preprocessors (realistic and coarse). */
// biome-ignore lint/suspicious/noExplicitAny: a list of definitions over different model types
export const lineartPreprocessors: PreprocessorDefinition<any>[] = [
  lineartRealisticPreprocessor,
  lineartCoarsePreprocessor,
];
