import { assertDecodeWork } from './codecs/cost.ts';
import { decodeJpeg, isJpeg, readJpegHeader } from './codecs/jpeg.ts';
import { decodePng, isPng, readPngHeader } from './codecs/png.ts';
import { decodeWebp, isWebp, readWebpHeader } from './codecs/webp.ts';
import { ImageError } from './errors.ts';
import type { RgbImage } from './image.ts';

/** Default refusal limit on the encoded size (bytes) of an input image. */
export const MAX_IMAGE_BYTES = 25 * 1024 * 1024;
/** Default refusal limit on width * height of an input image, read from its header before decoding. */
export const MAX_IMAGE_PIXELS = 36_000_000;

/**
 * Default refusal limit on the estimated decode work (see `decodeWork`): a 4096x4096 baseline JPEG, 8-bit
 * or 16-bit RGBA PNG, or JPEG of ten progressive scans fits; a 4096x4096 JPEG of 100 scans or an interlaced
 * 16-bit RGBA PNG does not.
 */
export const MAX_DECODE_WORK = 32_000_000;

/** Image formats {@link decodeImage} reads. */
export type ImageFormat = 'png' | 'jpeg' | 'webp';

/** Limits for {@link decodeImage}; each defaults to the exported constant of the same name. */
export interface DecodeOptions {
  maxBytes?: number;
  maxPixels?: number;
  /** Limit on the estimated decode work, in baseline-JPEG-pixel units. */
  maxWork?: number;
}

/** Format and size as the file's header states them (nothing is decompressed). */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

/** Identifies the format by its magic bytes and reads the dimensions from the header. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (!(bytes instanceof Uint8Array)) {
    throw new ImageError('image_invalid_argument', 'image bytes must be a Uint8Array');
  }
  if (bytes.length === 0) throw new ImageError('image_truncated', 'image is empty');
  if (isPng(bytes)) return { format: 'png', ...pick(readPngHeader(bytes)) };
  if (isJpeg(bytes)) return { format: 'jpeg', ...pick(readJpegHeader(bytes)) };
  if (isWebp(bytes)) return { format: 'webp', ...readWebpHeader(bytes) };
  throw new ImageError('image_unsupported_type', 'image is not a PNG, JPEG or WebP file');
}

function pick(header: { width: number; height: number }): { width: number; height: number } {
  return { width: header.width, height: header.height };
}

/**
 * Decodes a PNG, JPEG or WebP file to 8-bit RGB (or RGBA when the file has alpha), HWC.
 * The byte and pixel limits are checked on the header before any decompression (decompression bombs);
 * failures throw {@link ImageError} with a code. Async because WebP runs in wasm.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const maxBytes = options.maxBytes ?? MAX_IMAGE_BYTES;
  const maxPixels = options.maxPixels ?? MAX_IMAGE_PIXELS;
  if (bytes instanceof Uint8Array && bytes.length > maxBytes) {
    throw new ImageError('image_too_large', `image is ${bytes.length} bytes, the limit is ${maxBytes}`);
  }
  const header = readImageHeader(bytes);
  if (header.width * header.height > maxPixels) {
    throw new ImageError(
      'image_too_large',
      `image is ${header.width}x${header.height} pixels, the limit is ${maxPixels} pixels`,
    );
  }
  assertDecodeWork(bytes, options.maxWork ?? MAX_DECODE_WORK);
  let image: RgbImage;
  try {
    if (header.format === 'png') image = decodePng(bytes);
    else if (header.format === 'jpeg') image = decodeJpeg(bytes, maxPixels);
    else image = await decodeWebp(bytes);
  } catch (error) {
    // Whatever a codec throws on hostile bytes is the file's fault: a 4xx, never an internal error.
    if (error instanceof ImageError) throw error;
    throw new ImageError('image_corrupt', `${header.format} cannot be decoded`, { cause: error });
  }
  if (image.width !== header.width || image.height !== header.height) {
    throw new ImageError('image_corrupt', 'decoded size differs from the size in the header');
  }
  return image;
}
