import { ImageError } from '../errors.ts';
import { isJpeg, readJpegHeader } from './jpeg.ts';
import { isPng, readPngHeader } from './png.ts';
import { isWebp, readWebpHeader } from './webp.ts';

/**
 * Decode work, estimated from the headers alone so hostile files are refused before any decompression.
 * One unit is the work of one pixel of a baseline JPEG (~0.4 us in jpeg-js on one core; measured with
 * `npm run bench`, shared/bench/decode-cost.bench.ts). The size of a file says little about its decode cost:
 * a 93 KB progressive JPEG of 2,000 scans or a 130 KB 16-bit PNG of zeros each cost seconds, so limits are
 * on this estimate, not on bytes or pixels alone.
 */

/** Units per pixel of each progressive scan after the first, per share of the frame's components it codes. */
const JPEG_EXTRA_SCAN_UNITS = 0.05;
/** Units per pixel of PNG decoding up to 48 bits per pixel (inflate + unfilter + expand), more above. */
const PNG_UNITS_PER_PIXEL = 1.2;
/** Units per pixel of WebP decoding (libwebp in wasm). */
const WEBP_UNITS = 0.4;

/** Most scans a JPEG may have (libjpeg-turbo advises such a cap for untrusted input; real files have < 20). */
export const MAX_JPEG_SCANS = 100;

/** What decoding an image will cost, read from its headers. */
export interface DecodeWork {
  width: number;
  height: number;
  /** JPEG scans (1 for other formats). */
  scans: number;
  /** Estimated work in baseline-JPEG-pixel units. */
  units: number;
}

/**
 * JPEG: the first scan costs a baseline decode; every further scan walks all blocks of the components it
 * codes again (even when an end-of-band run codes them in a few bits), so it adds pixels x its share of the
 * components. Walks the markers after each scan's entropy-coded
 * data (linear in the file), refusing more than {@link MAX_JPEG_SCANS} scans or frames of different sizes.
 */
function jpegWork(bytes: Uint8Array): DecodeWork {
  const header = readJpegHeader(bytes);
  const pixels = header.width * header.height;
  let frameComponents = 3;
  // The frame header before the first scan gives the component count.
  for (let at = 2; at + 9 < header.scanStart; ) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1] as number;
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      frameComponents = Math.max(1, bytes[at + 9] as number);
    }
    at += 2 + length;
  }
  let scans = 0;
  let units = 0;
  // `at` points at an SOS marker's segment; count it, skip it, then find the next marker.
  let at = header.scanStart;
  let sosComponents = bytes[findSos(bytes, header.scanStart) + 4] ?? frameComponents;
  for (;;) {
    scans++;
    if (scans > MAX_JPEG_SCANS) {
      throw new ImageError('image_too_large', `JPEG has over ${MAX_JPEG_SCANS} scans (a decode-cost attack)`);
    }
    const share = Math.min(sosComponents, frameComponents) / frameComponents;
    units += scans === 1 ? pixels : pixels * share * JPEG_EXTRA_SCAN_UNITS;
    // Skip entropy-coded data: markers are FF followed by anything but 00 (stuffing) or D0..D7 (restarts).
    let next = -1;
    for (let i = at; i + 1 < bytes.length; i++) {
      if (bytes[i] !== 0xff) continue;
      const m = bytes[i + 1] as number;
      if (m === 0x00 || m === 0xff || (m >= 0xd0 && m <= 0xd7)) continue;
      next = i;
      break;
    }
    // Walk marker segments until the next SOS or the end of the image.
    let sos = -1;
    while (next >= 0 && next + 3 < bytes.length) {
      const m = bytes[next + 1] as number;
      if (m === 0xd9) break;
      if (m === 0xff) {
        next++;
        continue;
      }
      const length = ((bytes[next + 2] as number) << 8) | (bytes[next + 3] as number);
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && next + 8 < bytes.length) {
        const h = ((bytes[next + 5] as number) << 8) | (bytes[next + 6] as number);
        const w = ((bytes[next + 7] as number) << 8) | (bytes[next + 8] as number);
        if (w !== header.width || h !== header.height) {
          throw new ImageError('image_corrupt', 'JPEG has frames of different sizes');
        }
      }
      if (m === 0xda) {
        sos = next;
        break;
      }
      if (length < 2) break;
      next += 2 + length;
    }
    if (sos < 0) break;
    sosComponents = bytes[sos + 4] ?? 1;
    at = sos + 2 + (((bytes[sos + 2] as number) << 8) | (bytes[sos + 3] as number));
  }
  return { width: header.width, height: header.height, scans, units: Math.ceil(units) };
}

/** Offset of the SOS marker whose segment ends at `scanStart`. */
function findSos(bytes: Uint8Array, scanStart: number): number {
  for (let i = scanStart - 4; i >= 2; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xda) return i;
  }
  return scanStart;
}

const PNG_SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/**
 * PNG: inflating, unfiltering and expanding touch every byte of the raw scanlines, so the cost grows with
 * the bits per pixel (16-bit RGBA is 64); Adam7 interlacing adds seven passes of overhead.
 */
function pngWork(bytes: Uint8Array): DecodeWork {
  const h = readPngHeader(bytes);
  const bits = (PNG_SAMPLES[h.colorType] ?? 4) * h.bitDepth;
  const perPixel = PNG_UNITS_PER_PIXEL * Math.max(1, bits / 48) * (h.interlaced ? 1.5 : 1);
  return { width: h.width, height: h.height, scans: 1, units: Math.ceil(h.width * h.height * perPixel) };
}

/** Decode work of a PNG, JPEG or WebP file from its headers (see {@link DecodeWork}). */
export function decodeWork(bytes: Uint8Array): DecodeWork {
  if (isPng(bytes)) return pngWork(bytes);
  if (isJpeg(bytes)) return jpegWork(bytes);
  if (isWebp(bytes)) {
    const { width, height } = readWebpHeader(bytes);
    return { width, height, scans: 1, units: Math.ceil(width * height * WEBP_UNITS) };
  }
  throw new ImageError('image_unsupported_type', 'image is not a PNG, JPEG or WebP file');
}

/** Throws `image_too_large` when decoding `bytes` would cost more than `maxUnits`. */
export function assertDecodeWork(bytes: Uint8Array, maxUnits: number): DecodeWork {
  const work = decodeWork(bytes);
  if (work.units > maxUnits) {
    const scans = work.scans > 1 ? `, ${work.scans} scans` : '';
    throw new ImageError(
      'image_too_large',
      `image (${work.width}x${work.height}${scans}) needs ~${work.units} units of decode work, the limit is ${maxUnits}`,
    );
  }
  return work;
}
