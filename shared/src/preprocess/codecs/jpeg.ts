import { decode as jpegJsDecode, encode as jpegJsEncode } from 'jpeg-js';
import { ImageError } from '../errors.ts';
import type { Image8, RgbImage } from '../image.ts';
import { assertImage } from '../validate.ts';

/** True when `bytes` starts with a JPEG SOI marker. */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Frame size and the offset of the first scan, read from the marker segments without decoding. */
export interface JpegHeader {
  width: number;
  height: number;
  scanStart: number;
}

// SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Walks marker segments up to the first SOS; throws `image_truncated` when the data ends first. */
export function readJpegHeader(bytes: Uint8Array): JpegHeader {
  let at = 2;
  let width = 0;
  let height = 0;
  for (;;) {
    while (at < bytes.length && bytes[at] === 0xff && bytes[at + 1] === 0xff) at++; // fill bytes
    if (at + 4 > bytes.length) throw new ImageError('image_truncated', 'JPEG ends inside its headers');
    if (bytes[at] !== 0xff) throw new ImageError('image_corrupt', `JPEG has no marker at byte ${at}`);
    const marker = bytes[at + 1] as number;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xd9) throw new ImageError('image_corrupt', 'JPEG ends (EOI) before any image data');
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    if (length < 2) throw new ImageError('image_corrupt', 'JPEG has a malformed segment length');
    if (at + 2 + length > bytes.length)
      throw new ImageError('image_truncated', 'JPEG ends inside a header segment');
    if (isStartOfFrame(marker)) {
      if (length < 8) throw new ImageError('image_corrupt', 'JPEG frame header is too short');
      height = ((bytes[at + 5] as number) << 8) | (bytes[at + 6] as number);
      width = ((bytes[at + 7] as number) << 8) | (bytes[at + 8] as number);
      if (width === 0 || height === 0) {
        throw new ImageError('image_unsupported_type', 'JPEG without a frame height (DNL) is not supported');
      }
    }
    if (marker === 0xda) {
      if (width === 0) throw new ImageError('image_corrupt', 'JPEG has a scan before its frame header');
      return { width, height, scanStart: at + 2 + length };
    }
    at += 2 + length;
  }
}

/** A JPEG whose entropy-coded data is cut off has no EOI marker (FF D9) after its first scan. */
function assertComplete(bytes: Uint8Array, header: JpegHeader): void {
  for (let i = bytes.length - 2; i >= header.scanStart; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return;
  }
  throw new ImageError('image_truncated', 'JPEG ends before its end-of-image marker');
}

/** Decodes a baseline or progressive JPEG to 8-bit RGB (jpeg-js; EXIF orientation is not applied). */
export function decodeJpeg(bytes: Uint8Array, maxPixels: number): RgbImage {
  const header = readJpegHeader(bytes);
  assertComplete(bytes, header);
  try {
    const decoded = jpegJsDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: Math.ceil((maxPixels * 16) / 2 ** 20) + 64,
    });
    return { width: decoded.width, height: decoded.height, channels: 3, data: decoded.data };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ImageError('image_corrupt', `JPEG cannot be decoded: ${message}`, { cause: error });
  }
}

/** Encodes RGB or RGBA (alpha dropped, not composited) as baseline JPEG at `quality` 1..100 (jpeg-js). */
export function encodeJpeg(img: Image8, quality = 90): Uint8Array {
  assertImage(img, [1, 3, 4], 'encodeJpeg');
  const { width, height, channels, data } = img;
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0, s = 0, o = 0; i < width * height; i++, s += channels, o += 4) {
    rgba[o] = data[s] as number;
    rgba[o + 1] = data[channels === 1 ? s : s + 1] as number;
    rgba[o + 2] = data[channels === 1 ? s : s + 2] as number;
    rgba[o + 3] = 255;
  }
  const encoded = jpegJsEncode({ width, height, data: rgba }, quality).data;
  // jpeg-js hands back a Buffer under Node (and nodejs_compat); expose a plain Uint8Array view.
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}
