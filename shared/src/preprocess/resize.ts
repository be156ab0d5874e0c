import { resizeImageSize } from '../contracts/sizes.ts';
import { ImageError } from './errors.ts';
import type { Image8 } from './image.ts';
import { assertImage } from './validate.ts';

/**
 * Output size of the original `resize_image`: scale so the short side equals `resolution`, then round each side
 * to a multiple of 64 (half to even, as numpy does). `upscale` is the original's `k > 1` (Lanczos vs area).
 */
export function resizeTarget(
  width: number,
  height: number,
  resolution: number,
): { width: number; height: number; upscale: boolean } {
  if (!Number.isFinite(resolution) || resolution <= 0) {
    throw new ImageError('image_invalid_argument', `resolution must be positive, got ${resolution}`);
  }
  const target = resizeImageSize({ width, height }, resolution);
  if (target.width < 64 || target.height < 64) {
    throw new ImageError('image_invalid_argument', `resize to ${resolution} gives an empty image`);
  }
  return { ...target, upscale: resolution > Math.min(width, height) };
}

/** For each output coordinate: first source index and `taps` weights (flattened), edges clamped. */
interface Kernel {
  taps: number;
  first: Int32Array;
  weights: Float32Array;
}

/** OpenCV's INTER_LANCZOS4 weights: 8 taps of sinc(x) * sinc(x / 4) around the pixel-centre-aligned source. */
function lanczos4Kernel(srcSize: number, dstSize: number): Kernel {
  const scale = srcSize / dstSize;
  const taps = 8;
  const first = new Int32Array(dstSize);
  const weights = new Float32Array(dstSize * taps);
  for (let d = 0; d < dstSize; d++) {
    const position = (d + 0.5) * scale - 0.5;
    const base = Math.floor(position);
    const frac = position - base;
    first[d] = base - 3;
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const x = frac + 3 - i; // distance from tap i to the sample point
      let w: number;
      if (Math.abs(x) < 1e-7) w = 1;
      else {
        const px = Math.PI * x;
        w = (Math.sin(px) * Math.sin(px / 4)) / ((px * px) / 4);
      }
      weights[d * taps + i] = w;
      sum += w;
    }
    for (let i = 0; i < taps; i++) weights[d * taps + i] = (weights[d * taps + i] as number) / sum;
  }
  return { taps, first, weights };
}

/** INTER_AREA-style weights: each output pixel averages the source interval it covers, by overlap length. */
function areaKernel(srcSize: number, dstSize: number): Kernel {
  const scale = srcSize / dstSize;
  const taps = Math.ceil(scale) + 1;
  const first = new Int32Array(dstSize);
  const weights = new Float32Array(dstSize * taps);
  for (let d = 0; d < dstSize; d++) {
    let start = d * scale;
    let end = start + scale;
    if (scale < 1) {
      // Upscaling in this axis: OpenCV's INTER_AREA falls back to (close to) linear interpolation.
      const centre = (d + 0.5) * scale - 0.5;
      start = centre;
      end = centre + 1;
    }
    const base = Math.floor(start);
    first[d] = base;
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const lo = Math.max(start, base + i);
      const hi = Math.min(end, base + i + 1);
      const w = hi > lo ? hi - lo : 0;
      weights[d * taps + i] = w;
      sum += w;
    }
    for (let i = 0; i < taps; i++) weights[d * taps + i] = (weights[d * taps + i] as number) / sum;
  }
  return { taps, first, weights };
}

/** Separable resampling: rows through `kx` into a float buffer, then columns through `ky`; replicated edges. */
function resample(img: Image8, width: number, height: number, kx: Kernel, ky: Kernel): Image8 {
  const { width: srcWidth, height: srcHeight, channels, data } = img;
  const horizontal = new Float32Array(srcHeight * width * channels);
  for (let y = 0; y < srcHeight; y++) {
    const srcRow = y * srcWidth * channels;
    const dstRow = y * width * channels;
    for (let x = 0; x < width; x++) {
      const first = kx.first[x] as number;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let t = 0; t < kx.taps; t++) {
          const w = kx.weights[x * kx.taps + t] as number;
          if (w === 0) continue;
          const sx = Math.min(srcWidth - 1, Math.max(0, first + t));
          acc += w * (data[srcRow + sx * channels + c] as number);
        }
        horizontal[dstRow + x * channels + c] = acc;
      }
    }
  }
  const out = new Uint8Array(width * height * channels);
  const rowLength = width * channels;
  const row = new Float32Array(rowLength);
  for (let y = 0; y < height; y++) {
    const first = ky.first[y] as number;
    row.fill(0);
    for (let t = 0; t < ky.taps; t++) {
      const w = ky.weights[y * ky.taps + t] as number;
      if (w === 0) continue;
      const srcRow = Math.min(srcHeight - 1, Math.max(0, first + t)) * rowLength;
      for (let i = 0; i < rowLength; i++)
        row[i] = (row[i] as number) + w * (horizontal[srcRow + i] as number);
    }
    const dstRow = y * rowLength;
    for (let i = 0; i < rowLength; i++) {
      const v = Math.round(row[i] as number);
      out[dstRow + i] = v < 0 ? 0 : Math.min(v, 255);
    }
  }
  return { width, height, channels, data: out };
}

/**
 * The original apps' `resize_image(img, resolution)`: short side to `resolution`, sides rounded to multiples
 * of 64, Lanczos-4 when upscaling (k > 1) and area averaging otherwise. Same sizes and kernels as OpenCV's
 * INTER_LANCZOS4 / INTER_AREA, with replicated borders and float accumulation; not bit-identical to cv2.resize
 * (which uses fixed-point arithmetic), typically within 1-2 levels.
 */
export function resizeImage<C extends number>(img: Image8<C>, resolution: number): Image8<C> {
  assertImage(img, [1, 2, 3, 4], 'resizeImage');
  const target = resizeTarget(img.width, img.height, resolution);
  if (target.width === img.width && target.height === img.height) return img;
  const kernel = target.upscale ? lanczos4Kernel : areaKernel;
  const kx = kernel(img.width, target.width);
  const ky = kernel(img.height, target.height);
  return resample(img, target.width, target.height, kx, ky) as Image8<C>;
}

/**
 * Resizes to an exact size (when the request fixes width/height): per axis, Lanczos-4 when that axis grows
 * and area averaging when it shrinks, as `resize_image` chooses for the whole image.
 */
export function resizeImageTo<C extends number>(img: Image8<C>, width: number, height: number): Image8<C> {
  assertImage(img, [1, 2, 3, 4], 'resizeImageTo');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image_invalid_argument', `cannot resize to ${width}x${height}`);
  }
  if (width === img.width && height === img.height) return img;
  const kernelFor = (src: number, dst: number) =>
    dst > src ? lanczos4Kernel(src, dst) : areaKernel(src, dst);
  return resample(
    img,
    width,
    height,
    kernelFor(img.width, width),
    kernelFor(img.height, height),
  ) as Image8<C>;
}
