import type { Image8 } from '@contour/shared/preprocess';

/** annotator.util.safe_step(x, 2) on one float32 value: int32(float32(x) * 3) / 2, as float32. */
export function safeStep(x: number): number {
  return Math.trunc(Math.fround(Math.fround(x) * 3)) / 2;
}

/**
 * The detectors' `(edge * 255.0).clip(0, 255).astype(np.uint8)` of a one-channel edge map, as an HWC3 RGB image
 * (annotator.util.HWC3 of a gray map). `float32` multiplies in float32 as numpy does for a float32 array (PiDiNet,
 * and HED after safe_step); HED's plain sigmoid map is float64.
 */
export function edgeToImage(
  edge: ArrayLike<number>,
  width: number,
  height: number,
  float32: boolean,
): Image8<3> {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const scaled = float32 ? Math.fround(edge[i]! * 255) : edge[i]! * 255;
    const value = Math.trunc(Math.min(Math.max(scaled, 0), 255));
    data[3 * i] = value;
    data[3 * i + 1] = value;
    data[3 * i + 2] = value;
  }
  return { width, height, channels: 3, data };
}

/** RGB uint8 HWC -> float32 HWC data, channels picked in `order` ([2, 1, 0] for BGR), divided by `divisor`. */
export function imageToFloat(
  image: Image8<3>,
  order: readonly [number, number, number],
  divisor = 1,
): Float32Array {
  const pixels = image.width * image.height;
  const out = new Float32Array(pixels * 3);
  for (let i = 0; i < pixels; i++)
    for (let c = 0; c < 3; c++) out[3 * i + c] = Math.fround(image.data[3 * i + order[c]!]! / divisor);
  return out;
}
