import { hwc3, type Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { annotatorLayout, loadAnnotatorWeights, paramBytes } from '../annotator-weights.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { decodeLines, drawSegments, type Segment } from './decode.ts';
import { MlsdNetwork } from './network.ts';

/** M-LSD large weights, huggingface.co/lllyasviel/Annotators (mlsd_large_512_fp32.pth). */
export const MLSD_WEIGHTS = 'mlsd_large_512_fp32.pth';

/** The mlsd parameters as the ControlNet 1.1 app's sliders take them (A1111: thr_a / thr_b). */
export const MLSD_PARAMS = {
  /** thr_v: minimum centre score of a line. */
  value_threshold: { default: 0.1, min: 0.01, max: 2, step: 0.01 },
  /** thr_d: minimum length of a line, in half-resolution output cells. */
  distance_threshold: { default: 0.1, min: 0.01, max: 20, step: 0.01 },
} as const;

/** Loaded M-LSD weights. */
export interface MlsdModel extends AnnotatorModel {
  readonly network: MlsdNetwork;
}

/** Loads mlsd_large_512_fp32.pth (or a .safetensors with its keys) and folds its BatchNorms. */
export async function loadMlsd(paths: Readonly<Record<string, string>>): Promise<MlsdModel> {
  const network = new MlsdNetwork();
  await loadAnnotatorWeights(network.params, MLSD_WEIGHTS, paths, annotatorLayout());
  network.foldNorms();
  return {
    network,
    bytes: paramBytes(network.params),
    networks: [network],
    dispose() {
      network.disposeFolded();
      network.params.dispose();
    },
  };
}

/** The mlsd weights as the worker's model cache loads them. */
export const mlsdModel: AnnotatorModelSpec<MlsdModel> = {
  key: 'mlsd',
  files: [MLSD_WEIGHTS],
  load: loadMlsd,
};

/** What {@link detectLines} found: the raw network output (NHWC) and the decoded segments. */
export interface MlsdDetection {
  /** [h, w, 9] output data, or undefined when the original's network would fail on this size. */
  output?: { data: Float32Array; height: number; width: number; channels: number };
  /** Segments in image pixels; undefined where the original's try/except returns a black map. */
  segments?: Segment[];
}

/** Whether the network's skip connections line up for this side (the stride-2 convs give floor(n / 2)). */
function sideFits(n: number): boolean {
  const s1 = Math.floor(n / 2);
  const s2 = Math.floor(s1 / 2);
  const s3 = Math.floor(s2 / 2);
  return Math.floor(s3 / 2) >= 1 && s1 % 2 === 0 && s2 % 2 === 0 && s3 % 2 === 0;
}

/**
 * pred_lines(image, model, [H, W], thr_v, thr_d) as MLSDdetector calls it: the image at its own size (the
 * INTER_AREA resize to the same size is a copy), RGB / 127.5 - 1 plus a channel of 1 / 127.5 - 1, the network,
 * then {@link decodeLines}. Sizes the original network cannot run give no segments (it returns black there).
 */
export async function detectLines(
  engine: ModelEngine,
  network: MlsdNetwork,
  image: Image8<3>,
  valueThreshold: number,
  distanceThreshold: number,
): Promise<MlsdDetection> {
  const { width, height, data } = image;
  if (!sideFits(width) || !sideFits(height)) return {};
  const input = new Float32Array(width * height * 4);
  const one = Math.fround(Math.fround(1 / 127.5) - 1);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) input[i * 4 + c] = Math.fround(Math.fround(data[i * 3 + c]! / 127.5) - 1);
    input[i * 4 + 3] = one;
  }
  const x = tf.tensor4d(input, [1, height, width, 4]);
  let outputs: tf.Tensor[];
  try {
    outputs = await engine.runNetwork(network, [x]);
  } finally {
    x.dispose();
  }
  const [out] = outputs as [tf.Tensor4D];
  const [, oh, ow, oc] = out.shape;
  const values = (await out.data()) as Float32Array;
  for (const t of outputs) t.dispose();
  const segments = decodeLines(values, oh, ow, oc, { scoreThreshold: valueThreshold, distanceThreshold });
  return { output: { data: values, height: oh, width: ow, channels: oc }, segments };
}

function numberParam(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** `mlsd`: M-LSD straight lines, white on black (MLSDdetector, ControlNet 1.1 gradio_mlsd.py). */
export const mlsdPreprocessor: PreprocessorDefinition<MlsdModel> = {
  name: 'mlsd',
  model: mlsdModel,
  async run({ engine, image, params, model }) {
    const valueThreshold = numberParam(params.value_threshold, MLSD_PARAMS.value_threshold.default);
    const distanceThreshold = numberParam(params.distance_threshold, MLSD_PARAMS.distance_threshold.default);
    const { segments } = await detectLines(engine, model.network, image, valueThreshold, distanceThreshold);
    const plane = drawSegments(segments, image.width, image.height);
    return { map: hwc3({ width: image.width, height: image.height, channels: 1, data: plane }) };
  },
};

/** The M-LSD preprocessors. */
// biome-ignore lint/suspicious/noExplicitAny: a list of definitions over different model types
export const mlsdPreprocessors: PreprocessorDefinition<any>[] = [mlsdPreprocessor];
