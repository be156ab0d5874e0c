import type { Image8 } from '@contour/shared/preprocess';

/**
 * MidasDetector's input: `torch.from_numpy(img).float() / 127.5 - 1.0` (float32 arithmetic), HWC order kept
 * (the engine takes NHWC).
 */
export function midasInput(image: Image8<3>): Float32Array {
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(Math.fround(image.data[i]! / 127.5) - 1);
  return out;
}

/**
 * MidasDetector's post-processing of the prediction, in float32 as torch does it: `depth -= min(depth)`,
 * `depth /= max(depth)`, then numpy's `(depth * 255.0).clip(0, 255).astype(np.uint8)` (truncation); HWC3 of that
 * single-channel map. A constant prediction divides 0 by 0 there; its NaNs cast to 0 (what x86 numpy yields).
 */
export function depthToMap(depth: Float32Array, width: number, height: number): Image8<3> {
  let min = Number.POSITIVE_INFINITY;
  for (const v of depth) if (v < min) min = v;
  const shifted = new Float32Array(depth.length);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < depth.length; i++) {
    const v = Math.fround(depth[i]! - min);
    shifted[i] = v;
    if (v > max) max = v;
  }
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < shifted.length; i++) {
    const scaled = Math.fround(Math.fround(shifted[i]! / max) * 255);
    const value = Number.isNaN(scaled) ? 0 : Math.trunc(Math.min(Math.max(scaled, 0), 255));
    data[3 * i] = value;
    data[3 * i + 1] = value;
    data[3 * i + 2] = value;
  }
  return { width, height, channels: 3, data };
}
