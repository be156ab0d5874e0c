import { resizeImageSize } from '../contracts/sizes.ts';
import { cvResize } from './cv-resize.ts';
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

/**
 * The original apps' `resize_image(img, resolution)`: short side to `resolution`, sides rounded to multiples
 * of 64, then `cv2.resize` with INTER_LANCZOS4 when upscaling (k > 1) and INTER_AREA otherwise; bit-identical
 * to OpenCV 4 (see cvResize).
 */
export function resizeImage<C extends number>(img: Image8<C>, resolution: number): Image8<C> {
  assertImage(img, [1, 2, 3, 4], 'resizeImage');
  const target = resizeTarget(img.width, img.height, resolution);
  if (target.width === img.width && target.height === img.height) return img;
  return cvResize(img, target.width, target.height, target.upscale ? 'lanczos4' : 'area');
}

/**
 * Resizes to an exact size with the interpolation `resize_image` would pick: INTER_LANCZOS4 when the source's
 * short side grows (its k > 1), INTER_AREA otherwise. For a size derived by `resizeTarget` from a resolution
 * that is a multiple of 64 this is exactly `resize_image`; a size that grows one axis and shrinks the other
 * still gets one cv2.resize call with that choice (as cv2 would), not a different filter per axis.
 */
export function resizeImageTo<C extends number>(img: Image8<C>, width: number, height: number): Image8<C> {
  assertImage(img, [1, 2, 3, 4], 'resizeImageTo');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image_invalid_argument', `cannot resize to ${width}x${height}`);
  }
  if (width === img.width && height === img.height) return img;
  const grows = img.width <= img.height ? width > img.width : height > img.height;
  return cvResize(img, width, height, grows ? 'lanczos4' : 'area');
}
