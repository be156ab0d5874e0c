import type { ControlMap, Image8 } from './image.ts';
import { assertImage } from './validate.ts';

let overWhiteTable: Uint8Array | undefined;

/**
 * uint8 result of the original HWC3's `color * alpha + 255 * (1 - alpha)` in float32 (alpha = a / 255),
 * truncated, for every (alpha, color) pair: index `alpha * 256 + color`.
 */
function compositeOverWhiteTable(): Uint8Array {
  if (overWhiteTable) return overWhiteTable;
  const table = new Uint8Array(256 * 256);
  const f = Math.fround;
  for (let a = 0; a < 256; a++) {
    const alpha = f(a / 255);
    const white = f(255 * f(1 - alpha));
    for (let c = 0; c < 256; c++) {
      const y = f(f(c * alpha) + white);
      table[a * 256 + c] = Math.min(255, Math.max(0, Math.trunc(y)));
    }
  }
  overWhiteTable = table;
  return table;
}

/**
 * The original apps' HWC3: 3-channel RGB from gray (replicated), RGB (returned as is) or RGBA (composited over
 * white with float32 arithmetic, truncated to uint8, exactly as numpy does it).
 */
export function hwc3(img: Image8): Image8<3> {
  assertImage(img, [1, 3, 4], 'hwc3');
  const { width, height, channels, data } = img;
  if (channels === 3) return img as Image8<3>;
  const pixels = width * height;
  const out = new Uint8Array(pixels * 3);
  if (channels === 1) {
    for (let i = 0, o = 0; i < pixels; i++, o += 3) {
      const v = data[i] as number;
      out[o] = v;
      out[o + 1] = v;
      out[o + 2] = v;
    }
  } else {
    const table = compositeOverWhiteTable();
    for (let i = 0, p = 0, o = 0; i < pixels; i++, p += 4, o += 3) {
      const row = (data[p + 3] as number) << 8;
      out[o] = table[row + (data[p] as number)] as number;
      out[o + 1] = table[row + (data[p + 1] as number)] as number;
      out[o + 2] = table[row + (data[p + 2] as number)] as number;
    }
  }
  return { width, height, channels: 3, data: out };
}

/** Control map for the model: HWC3 then `/ 255` to float RGB in [0, 1] (the original `map / 255.0`). */
export function toControlMap(img: Image8): ControlMap {
  const rgb = hwc3(img);
  const out = new Float32Array(rgb.data.length);
  const src = rgb.data;
  for (let i = 0; i < src.length; i++) out[i] = (src[i] as number) / 255;
  return { width: rgb.width, height: rgb.height, channels: 3, data: out };
}
