import { cvResize, hwc3, type Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { annotatorLayout, loadAnnotatorWeights, paramBytes } from '../annotator-weights.ts';
import type { AnnotatorModel, AnnotatorModelSpec, PreprocessorDefinition } from '../types.ts';
import { LineartAnimeNetwork } from './network.ts';

/** Anime2Sketch weights, huggingface.co/lllyasviel/Annotators (netG.pth). */
export const LINEART_ANIME_WEIGHTS = 'netG.pth';

/** Loaded Anime2Sketch generator. */
export interface LineartAnimeModel extends AnnotatorModel {
  readonly network: LineartAnimeNetwork;
}

/** Loads netG.pth; its keys may carry DataParallel's `module.` prefix (the original strips it). */
export async function loadLineartAnime(paths: Readonly<Record<string, string>>): Promise<LineartAnimeModel> {
  const network = new LineartAnimeNetwork();
  await loadAnnotatorWeights(network.params, LINEART_ANIME_WEIGHTS, paths, annotatorLayout(['module.']));
  return {
    network,
    bytes: paramBytes(network.params),
    networks: [network],
    dispose: () => network.params.dispose(),
  };
}

/** netG.pth as the worker's model cache loads it. */
export const lineartAnimeModel: AnnotatorModelSpec<LineartAnimeModel> = {
  key: 'lineart_anime',
  files: [LINEART_ANIME_WEIGHTS],
  load: loadLineartAnime,
};

/** The network's side for an image side: the next multiple of 256 (Hn = 256 * ceil(H / 256)). */
export function paddedSide(n: number): number {
  return 256 * Math.ceil(n / 256);
}

/**
 * The generator on an RGB image already at a multiple of 256: (img / 127.5 - 1) in float32, then
 * `model(x)[0, 0] * 127.5 + 127.5` (float32), as [H, W] data.
 */
export async function lineartAnimeOutput(
  engine: ModelEngine,
  network: LineartAnimeNetwork,
  image: Image8<3>,
): Promise<{ data: Float32Array; height: number; width: number }> {
  const { width, height, data } = image;
  const input = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) input[i] = Math.fround(Math.fround(data[i]! / 127.5) - 1);
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
  const line = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) line[i] = Math.fround(Math.fround(values[i]! * 127.5) + 127.5);
  return { data: line, height: h, width: w };
}

/** line.clip(0, 255).astype(np.uint8): clamp, then truncate. */
export function toUint8(line: Float32Array): Uint8Array {
  const out = new Uint8Array(line.length);
  for (let i = 0; i < line.length; i++) out[i] = Math.trunc(Math.min(255, Math.max(0, line[i]!)));
  return out;
}

/**
 * The detector's tail: `line` (the network-size [hn, wn] output * 127.5 + 127.5) resized back to the image size
 * with INTER_CUBIC (float32; skipped when the sizes match, where cv2 copies), clipped and truncated to uint8.
 */
export function lineToMap(
  line: { data: Float32Array; width: number; height: number },
  width: number,
  height: number,
): Uint8Array {
  if (line.width === width && line.height === height) return toUint8(line.data);
  return toUint8(cvResize({ ...line, channels: 1 }, width, height, 'cubic').data);
}

/**
 * LineartAnimeDetector.__call__: cv2.resize (INTER_CUBIC) to the next multiples of 256, the generator, then
 * {@link lineToMap} (dark lines on white for the real weights: what gradio_lineart_anime.py shows). `control` is
 * that map inverted, as the app feeds ControlNet (`1 - map / 255`) and A1111 returns it (`255 - result`); both
 * HWC3, with the network-size `line` for inspection.
 */
export async function detectLineartAnime(
  engine: ModelEngine,
  network: LineartAnimeNetwork,
  image: Image8<3>,
): Promise<{
  map: Image8<3>;
  control: Image8<3>;
  line: { data: Float32Array; width: number; height: number };
}> {
  const { width, height } = image;
  const wn = paddedSide(width);
  const hn = paddedSide(height);
  const resized = wn === width && hn === height ? image : cvResize(image, wn, hn, 'cubic');
  const line = await lineartAnimeOutput(engine, network, resized);
  const map = lineToMap(line, width, height);
  return {
    map: hwc3({ width, height, channels: 1, data: map }),
    control: hwc3({ width, height, channels: 1, data: map.map((v) => 255 - v) }),
    line,
  };
}

/**
 * `lineart_anime`: Anime2Sketch line art (LineartAnimeDetector, ControlNet 1.1 gradio_lineart_anime.py), white
 * lines on black: the control map the app feeds ControlNet.
 */
export const lineartAnimePreprocessor: PreprocessorDefinition<LineartAnimeModel> = {
  name: 'lineart_anime',
  model: lineartAnimeModel,
  async run({ engine, image, model }) {
    const { control } = await detectLineartAnime(engine, model.network, image);
    return { map: control };
  },
};

/** The anime lineart preprocessors. */
// biome-ignore lint/suspicious/noExplicitAny: a list of definitions over different model types
export const lineartAnimePreprocessors: PreprocessorDefinition<any>[] = [lineartAnimePreprocessor];
