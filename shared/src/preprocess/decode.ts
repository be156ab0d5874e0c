import { assertDecodeWork } from './codecs/cost.ts';
import { jpegExif, pngExif, webpExif } from './codecs/exif.ts';
import { decodeJpeg, isJpeg, readJpegHeader } from './codecs/jpeg.ts';
import { decodePngAsync, isPng, readPngHeader } from './codecs/png.ts';
import { decodeWebp, isWebp, readWebpHeader } from './codecs/webp.ts';
import { ImageError } from './errors.ts';
import type { RgbImage } from './image.ts';
import { applyOrientation, type Orientation, readExifOrientation, swapsAxes } from './orientation.ts';

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

/**
 * Format, upright size and EXIF orientation, read from the file's headers (nothing is decompressed).
 * `width`/`height` are as shown, after the orientation: a portrait phone photo stored sideways with
 * orientation 6 reports its portrait size, as browsers and OpenCV's imread do.
 */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  orientation: Orientation;
}

/** Identifies the format by its magic bytes and reads the size and EXIF orientation from the headers. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (!(bytes instanceof Uint8Array)) {
    throw new ImageError('image_invalid_argument', 'image bytes must be a Uint8Array');
  }
  if (bytes.length === 0) throw new ImageError('image_truncated', 'image is empty');
  if (isPng(bytes)) return upright('png', readPngHeader(bytes), pngExif(bytes));
  if (isJpeg(bytes)) return upright('jpeg', readJpegHeader(bytes), jpegExif(bytes));
  if (isWebp(bytes)) return upright('webp', readWebpHeader(bytes), webpExif(bytes));
  throw new ImageError('image_unsupported_type', 'image is not a PNG, JPEG or WebP file');
}

function upright(
  format: ImageFormat,
  stored: { width: number; height: number },
  exif: Uint8Array | undefined,
): ImageHeader {
  const orientation = exif ? readExifOrientation(exif) : 1;
  const swap = swapsAxes(orientation);
  return {
    format,
    width: swap ? stored.height : stored.width,
    height: swap ? stored.width : stored.height,
    orientation,
  };
}

/**
 * Decodes a PNG, JPEG or WebP file to 8-bit RGB (or RGBA when the file has alpha), HWC, turned upright by its
 * EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) like browsers and `cv2.imread`; 16-bit samples keep their
 * high byte, grey and palette images are expanded to RGB(A), CMYK/YCCK JPEGs converted as libjpeg does.
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
    if (header.format === 'png') image = await decodePngAsync(bytes);
    else if (header.format === 'jpeg') image = decodeJpeg(bytes, maxPixels);
    else image = await decodeWebp(bytes);
  } catch (error) {
    // Whatever a codec throws on hostile bytes is the file's fault: a 4xx, never an internal error.
    if (error instanceof ImageError) throw error;
    throw new ImageError('image_corrupt', `${header.format} cannot be decoded`, { cause: error });
  }
  const swap = swapsAxes(header.orientation);
  if (
    image.width !== (swap ? header.height : header.width) ||
    image.height !== (swap ? header.width : header.height)
  ) {
    throw new ImageError('image_corrupt', 'decoded size differs from the size in the header');
  }
  return applyOrientation(image, header.orientation);
}
