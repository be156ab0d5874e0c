import type { Image8 } from '@contour/shared/preprocess';
import { cvResize } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { ADE20K_CLASSES, type UperNetUniFormer } from './network.ts';
import { ADE20K_PALETTE } from './palette.ts';

/** The ADE20K test pipeline's Resize img_scale (configs/_base_/datasets/ade20k.py), keep_ratio=True. */
export const ADE20K_TEST_SCALE: readonly [number, number] = [2048, 512];
/** Normalize's img_norm_cfg (ImageNet mean/std on 0..255), applied after its to_rgb channel swap; mmseg's Normalize
 * stores both as float32 arrays. */
const MEAN = [123.675, 116.28, 103.53] as const;
const STD = [58.395, 57.12, 57.375] as const;

/** mmcv.rescale_size((w, h), scale): the largest size within (long, short) edges keeping the aspect ratio. */
export function rescaleSize(
  width: number,
  height: number,
  scale: readonly [number, number],
): [number, number] {
  const factor = Math.min(
    Math.max(...scale) / Math.max(width, height),
    Math.min(...scale) / Math.min(width, height),
  );
  // mmcv _scale_size: int(w * scale + 0.5).
  return [Math.trunc(width * factor + 0.5), Math.trunc(height * factor + 0.5)];
}

/**
 * The test pipeline up to the tensor: mmcv.imrescale (cv2.resize INTER_LINEAR) to `scale`, then mmcv.imnormalize
 * with to_rgb=True. UniformerDetector is handed RGB, which mmcv takes for BGR, so the "to RGB" swap feeds the
 * network B, G, R: reproduced as the 1.1 annotator does it. Rounding as OpenCV does it (checked bit for bit):
 * mean and std are float32 (mmseg Normalize), cv2.subtract runs in float32, cv2.multiply by 1 / double(std) in
 * double, rounded once.
 * Returns NHWC float data.
 */
export function prepareInput(
  image: Image8<3>,
  scale: readonly [number, number] = ADE20K_TEST_SCALE,
): { data: Float32Array; width: number; height: number } {
  const [width, height] = rescaleSize(image.width, image.height, scale);
  const resized = cvResize(image, width, height, 'linear');
  const mean = MEAN.map(Math.fround);
  const inv = STD.map((s) => 1 / Math.fround(s));
  const data = new Float32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const value = resized.data[p * 3 + 2 - c]!;
      data[p * 3 + c] = Math.fround(Math.fround(value - mean[c]!) * inv[c]!);
    }
  }
  return { data, width, height };
}

/** argmax over the class axis of NHWC logits (first maximum on ties, as torch.argmax). */
export function argmaxClasses(logits: Float32Array, classes: number): Uint8Array {
  const pixels = logits.length / classes;
  const labels = new Uint8Array(pixels);
  for (let p = 0; p < pixels; p++) {
    const base = p * classes;
    let best = 0;
    let max = logits[base]!;
    for (let k = 1; k < classes; k++) {
      const v = logits[base + k]!;
      if (v > max) {
        max = v;
        best = k;
      }
    }
    labels[p] = best;
  }
  return labels;
}

/** show_result(..., palette=get_palette('ade'), opacity=1) then bgr2rgb: each pixel is its class's ADE20K colour. */
export function paletteMap(labels: Uint8Array, width: number, height: number): Image8<3> {
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < labels.length; p++)
    data.set(ADE20K_PALETTE.subarray(labels[p]! * 3, labels[p]! * 3 + 3), p * 3);
  return { width, height, channels: 3, data };
}

/** What {@link segment} returns: the colour map, the class per pixel and, on request, the raw stride-4 logits. */
export interface Segmentation {
  map: Image8<3>;
  labels: Uint8Array;
  /** NHWC [1, h/4, w/4, 150] at the test scale (only with `withLogits`). */
  logits?: { data: Float32Array; shape: number[] };
}

/**
 * UniformerDetector.__call__: inference_segmentor (rescale, normalise, whole-image UperNet, logits resized back,
 * softmax, argmax) and show_result_pyplot with the ADE20K palette at opacity 1. Softmax is skipped: it keeps the
 * argmax. `scale` is the test pipeline's img_scale (tests pass a small one).
 */
export async function segment(
  engine: ModelEngine,
  net: UperNetUniFormer,
  image: Image8<3>,
  options: { scale?: readonly [number, number]; withLogits?: boolean } = {},
): Promise<Segmentation> {
  const input = prepareInput(image, options.scale);
  const x = tf.tensor4d(input.data, [1, input.height, input.width, 3]);
  const original = tf.zeros([1, image.height, image.width, 1]) as tf.Tensor4D;
  let outputs: tf.Tensor[] = [];
  try {
    outputs = await engine.runNetwork(net, [x, original]);
    const [logits, full] = outputs as [tf.Tensor, tf.Tensor];
    const labels = argmaxClasses((await full.data()) as Float32Array, ADE20K_CLASSES);
    return {
      map: paletteMap(labels, image.width, image.height),
      labels,
      logits: options.withLogits
        ? { data: (await logits.data()) as Float32Array, shape: logits.shape }
        : undefined,
    };
  } finally {
    x.dispose();
    original.dispose();
    for (const t of outputs) t.dispose();
  }
}
