/** The OpenposeDetector pipeline (annotator/openpose/__init__.py, body.py, hand.py, face.py) around the networks. */
import { cvResize } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type { Network } from '../../engine/network.ts';
import { gaussianBlurSigma08, resizeBilinearAlignCorners } from './filters.ts';
import {
  type BodyResult,
  bodyFromMaps,
  type FaceBox,
  faceDetect,
  facePeaksFromMaps,
  type HandBox,
  handDetect,
  handPeaksFromMaps,
} from './postprocess.ts';

/** An 8-bit HWC image with 3 channels (BGR inside the detector, as the original flips it). */
export interface Bgr {
  data: Uint8Array;
  width: number;
  height: number;
}

/** util.smart_resize / smart_resize_k on a uint8 3-channel image: INTER_AREA when shrinking (k < 1), else LANCZOS4. */
function smartResizeImage(img: Bgr, ht: number, wt: number): Bgr {
  const k = (ht + wt) / (img.height + img.width);
  const out = cvResize(
    { width: img.width, height: img.height, channels: 3, data: img.data },
    Math.trunc(wt),
    Math.trunc(ht),
    k < 1 ? 'area' : 'lanczos4',
  );
  return { data: out.data, width: out.width, height: out.height };
}

/**
 * smart_resize(_k) of float32 channels (the original resizes a map channel by channel; cv2 treats channels
 * independently, so up to 4 go through one cvResize call, bit-identical and faster).
 */
function smartResizeChannels(
  x: Float32Array,
  channels: number,
  h: number,
  w: number,
  ht: number,
  wt: number,
): Float32Array {
  const k = (ht + wt) / (h + w);
  return cvResize(
    { width: w, height: h, channels, data: x },
    Math.trunc(wt),
    Math.trunc(ht),
    k < 1 ? 'area' : 'lanczos4',
  ).data;
}

/** util.padRightDownCorner(img, 8, 128): pads bottom and right to multiples of 8. */
function padRightDown(img: Bgr): { img: Bgr; padDown: number; padRight: number } {
  const padDown = img.height % 8 === 0 ? 0 : 8 - (img.height % 8);
  const padRight = img.width % 8 === 0 ? 0 : 8 - (img.width % 8);
  if (!padDown && !padRight) return { img, padDown, padRight };
  const width = img.width + padRight;
  const height = img.height + padDown;
  const data = new Uint8Array(width * height * 3).fill(128);
  for (let y = 0; y < img.height; y++)
    data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), y * width * 3);
  return { img: { data, width, height }, padDown, padRight };
}

/** np.float32(img) / 256 - 0.5 as an NHWC tensor (channels stay in BGR order). */
function toInput(img: Bgr): tf.Tensor4D {
  const x = new Float32Array(img.data.length);
  for (let i = 0; i < x.length; i++) x[i] = img.data[i]! / 256 - 0.5;
  return tf.tensor4d(x, [1, img.height, img.width, 3]);
}

/** Runs a network on one input and returns its outputs' NHWC data. */
async function run(
  engine: ModelEngine,
  net: Network,
  input: tf.Tensor4D,
): Promise<{ data: Float32Array; shape: number[] }[]> {
  const outputs = await engine.runNetwork(net, [input]);
  try {
    return await Promise.all(
      outputs.map(async (o) => ({ data: (await o.data()) as Float32Array, shape: o.shape })),
    );
  } finally {
    tf.dispose([input, ...outputs]);
  }
}

/** Channels [c0, c0 + n) of an HWC map, interleaved. */
function channels(data: Float32Array, pixels: number, total: number, c0: number, n: number): Float32Array {
  const out = new Float32Array(pixels * n);
  for (let i = 0; i < pixels; i++) for (let j = 0; j < n; j++) out[i * n + j] = data[i * total + c0 + j]!;
  return out;
}

/** A network map brought back to the image: x8 (LANCZOS4), padding cropped, resized to outH x outW; HWC float64. */
function upsampleMap(
  map: { data: Float32Array; shape: number[] },
  crop: [number, number],
  out: [number, number],
  weight: number,
): Float64Array {
  const [, h, w, c] = map.shape as [number, number, number, number];
  const [ch, cw] = crop;
  const [oh, ow] = out;
  const result = new Float64Array(oh * ow * c);
  for (let c0 = 0; c0 < c; c0 += 4) {
    const n = Math.min(4, c - c0);
    const up = smartResizeChannels(channels(map.data, h * w, c, c0, n), n, h, w, h * 8, w * 8);
    const cropped = new Float32Array(ch * cw * n);
    for (let y = 0; y < ch; y++) cropped.set(up.subarray(y * w * 8 * n, (y * w * 8 + cw) * n), y * cw * n);
    const resized = smartResizeChannels(cropped, n, ch, cw, oh, ow);
    for (let i = 0; i < oh * ow; i++) {
      for (let j = 0; j < n; j++) {
        const v = resized[i * n + j]!;
        // heatmap / len(multiplier) is a float32 division
        result[i * c + c0 + j] = weight === 1 ? v : Math.fround(v / weight);
      }
    }
  }
  return result;
}

/** Body.__call__'s maps (scale_search [0.5], boxsize 368, stride 8): heatmap_avg (H x W x 19), paf_avg (x 38), float64. */
export async function bodyMaps(
  engine: ModelEngine,
  net: Network,
  img: Bgr,
): Promise<{ heatmap: Float64Array; paf: Float64Array }> {
  const scale = (0.5 * 368) / img.height;
  const resized = smartResizeImage(img, img.height * scale, img.width * scale);
  const { img: padded, padDown, padRight } = padRightDown(resized);
  const [paf, heat] = await run(engine, net, toInput(padded));
  const crop: [number, number] = [padded.height - padDown, padded.width - padRight];
  const size: [number, number] = [img.height, img.width];
  return { heatmap: upsampleMap(heat!, crop, size, 1), paf: upsampleMap(paf!, crop, size, 1) };
}

/** Body.__call__: candidate (x, y, score, id) in pixels and subset. */
export async function estimateBody(engine: ModelEngine, net: Network, img: Bgr): Promise<BodyResult> {
  const { heatmap, paf } = await bodyMaps(engine, net, img);
  return bodyFromMaps(heatmap, paf, img.height, img.width);
}

/** RGB -> the BGR copy OpenposeDetector works on (`oriImg[:, :, ::-1]`). */
export function rgbToBgr(rgb: Bgr): Bgr {
  const bgr = new Uint8Array(rgb.data.length);
  for (let i = 0; i < bgr.length; i += 3) {
    bgr[i] = rgb.data[i + 2]!;
    bgr[i + 1] = rgb.data[i + 1]!;
    bgr[i + 2] = rgb.data[i]!;
  }
  return { data: bgr, width: rgb.width, height: rgb.height };
}

/**
 * oriImg[y:y+w, x:x+w] with numpy's clipping: a face box may reach past the image (faceDetect clamps its width
 * against x + width, not x + 2 width), and then the crop is not square.
 */
export function cropBox(img: Bgr, x: number, y: number, w: number): Bgr {
  const width = Math.max(0, Math.min(x + w, img.width) - x);
  const height = Math.max(0, Math.min(y + w, img.height) - y);
  const data = new Uint8Array(width * height * 3);
  for (let r = 0; r < height; r++) {
    const start = ((y + r) * img.width + x) * 3;
    data.set(img.data.subarray(start, start + width * 3), r * width * 3);
  }
  return { data, width, height };
}

/** Hand.__call__ on a crop: Gaussian blur 0.8, four scales (184..736), maps averaged at 128 x 128, peaks in crop pixels. */
export async function estimateHand(
  engine: ModelEngine,
  net: Network,
  crop: Bgr,
): Promise<[number, number][]> {
  const blurred: Bgr = { ...crop, data: gaussianBlurSigma08(crop.data, crop.height, crop.width, 3) };
  const wsize = 128;
  const avg = new Float64Array(wsize * wsize * 22);
  for (const s of [0.5, 1.0, 1.5, 2.0]) {
    const scale = s * 368;
    const { img: padded, padDown, padRight } = padRightDown(smartResizeImage(blurred, scale, scale));
    const [heat] = await run(engine, net, toInput(padded));
    const map = upsampleMap(heat!, [padded.height - padDown, padded.width - padRight], [wsize, wsize], 4);
    for (let i = 0; i < avg.length; i++) avg[i] = avg[i]! + map[i]!;
  }
  return handPeaksFromMaps(avg, crop.height, crop.width);
}

/** Face.__call__ + compute_peaks_from_heatmaps on a crop: 384 x 384 input, maps resized to the crop, per-channel peaks. */
export async function estimateFace(
  engine: ModelEngine,
  net: Network,
  crop: Bgr,
): Promise<([number, number] | null)[]> {
  const input = smartResizeImage(crop, 384, 384);
  const [heat] = await run(engine, net, toInput(input));
  const [, h, w, c] = heat!.shape as [number, number, number, number];
  const chw = new Float32Array(c * h * w);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) chw[k * h * w + i] = heat!.data[i * c + k]!;
  const maps = resizeBilinearAlignCorners(chw, c, h, w, crop.height, crop.width);
  return facePeaksFromMaps(maps, c, crop.height, crop.width);
}

/** What OpenposeDetector computes: the body and, when asked, hands and faces with their boxes (pixels). */
export interface DetectedPose {
  body: BodyResult;
  hands: { box: HandBox; peaks: [number, number][] }[];
  /** Per face: the peak of each of the 71 channels, null where none passed the threshold. */
  faces: { box: FaceBox; peaks: ([number, number] | null)[] }[];
}

/** OpenposeDetector.__call__ up to the pose dict: RGB in, the original's BGR flip, body, then hands and faces. */
export async function detectPose(
  engine: ModelEngine,
  nets: { body: Network; hand?: Network; face?: Network },
  rgb: Bgr,
): Promise<DetectedPose> {
  const img = rgbToBgr(rgb);
  const body = await estimateBody(engine, nets.body, img);
  const hands: DetectedPose['hands'] = [];
  const faces: DetectedPose['faces'] = [];
  if (nets.hand) {
    for (const box of handDetect(body, img.height, img.width)) {
      hands.push({ box, peaks: await estimateHand(engine, nets.hand, cropBox(img, box.x, box.y, box.w)) });
    }
  }
  if (nets.face) {
    for (const box of faceDetect(body, img.height, img.width)) {
      faces.push({ box, peaks: await estimateFace(engine, nets.face, cropBox(img, box.x, box.y, box.w)) });
    }
  }
  return { body, hands, faces };
}
