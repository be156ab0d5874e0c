import { encode as fastPngEncode } from 'fast-png';
import { Unzlib } from 'fflate';
import { ImageError } from '../errors.ts';
import type { Image8, RgbImage } from '../image.ts';
import { assertImage } from '../validate.ts';
import { crc32, deflateNative, hasNativeZlib, inflateNative } from './zlib.ts';

// The PNG decoder is written here rather than taken from fast-png because fast-png inflates the whole zlib
// stream without an output bound (a few KB can expand to GBs: a decompression bomb) and its generic unfiltering
// costs more CPU than the edge's budget allows. Inflate itself is fflate's.

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// Compressed bytes fed to the inflater per step; bounds what one step can expand to before the size check runs.
const INFLATE_STEP = 16 * 1024;

/** True when `bytes` starts with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** Fields of the IHDR chunk. */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

const VALID_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function readU32(bytes: Uint8Array, at: number): number {
  return (
    (((bytes[at] as number) << 24) |
      ((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number)) >>>
    0
  );
}

function chunkType(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(
    bytes[at] as number,
    bytes[at + 1] as number,
    bytes[at + 2] as number,
    bytes[at + 3] as number,
  );
}

/** Reads and validates IHDR only (no decompression). */
export function readPngHeader(bytes: Uint8Array): PngHeader {
  if (bytes.length < 33) throw new ImageError('image_truncated', 'PNG ends inside its header');
  if (readU32(bytes, 8) !== 13 || chunkType(bytes, 12) !== 'IHDR') {
    throw new ImageError('image_corrupt', 'PNG does not start with an IHDR chunk');
  }
  const width = readU32(bytes, 16);
  const height = readU32(bytes, 20);
  const bitDepth = bytes[24] as number;
  const colorType = bytes[25] as number;
  const compression = bytes[26] as number;
  const filter = bytes[27] as number;
  const interlace = bytes[28] as number;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new ImageError('image_corrupt', `PNG has invalid dimensions ${width}x${height}`);
  }
  if (!VALID_DEPTHS[colorType]?.includes(bitDepth)) {
    throw new ImageError('image_corrupt', `PNG has invalid colour type ${colorType} / bit depth ${bitDepth}`);
  }
  if (compression !== 0 || filter !== 0 || interlace > 1) {
    throw new ImageError('image_corrupt', 'PNG has an unknown compression, filter or interlace method');
  }
  return { width, height, bitDepth, colorType, interlaced: interlace === 1 };
}

interface PngChunks {
  palette?: Uint8Array;
  transparency?: Uint8Array;
  idat: Uint8Array[];
}

/** Walks every chunk; a chunk running past the end or a missing IEND means the file was cut. */
function readChunks(bytes: Uint8Array): PngChunks {
  const chunks: PngChunks = { idat: [] };
  let at = 8;
  for (;;) {
    if (at + 12 > bytes.length) throw new ImageError('image_truncated', 'PNG ends before its IEND chunk');
    const length = readU32(bytes, at);
    const type = chunkType(bytes, at + 4);
    const dataStart = at + 8;
    if (dataStart + length + 4 > bytes.length) {
      throw new ImageError('image_truncated', `PNG ends inside its ${type} chunk`);
    }
    const body = bytes.subarray(dataStart, dataStart + length);
    if (type === 'IDAT') chunks.idat.push(body);
    else if (type === 'PLTE') chunks.palette = body;
    else if (type === 'tRNS') chunks.transparency = body;
    else if (type === 'IEND') return chunks;
    at = dataStart + length + 4;
  }
}

const ADAM7 = [
  // [xStart, yStart, xStep, yStep]
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

interface Pass {
  xStart: number;
  yStart: number;
  xStep: number;
  yStep: number;
  width: number;
  height: number;
}

function passesOf(header: PngHeader): Pass[] {
  const { width, height } = header;
  if (!header.interlaced) return [{ xStart: 0, yStart: 0, xStep: 1, yStep: 1, width, height }];
  return ADAM7.map(([xStart, yStart, xStep, yStep]) => ({
    xStart,
    yStart,
    xStep,
    yStep,
    width: Math.ceil((width - xStart) / xStep),
    height: Math.ceil((height - yStart) / yStep),
  })).filter((p) => p.width > 0 && p.height > 0);
}

/** Inflates the concatenated IDAT data into exactly `expected` bytes, refusing streams that would give more. */
function inflateBounded(idat: Uint8Array[], expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let written = 0;
  let ended = false;
  const inflater = new Unzlib((chunk, final) => {
    if (written + chunk.length > expected) {
      throw new ImageError('image_corrupt', 'PNG image data is larger than its dimensions allow');
    }
    out.set(chunk, written);
    written += chunk.length;
    if (final) ended = true;
  });
  try {
    for (let i = 0; i < idat.length; i++) {
      const part = idat[i] as Uint8Array;
      for (let at = 0; at < part.length; at += INFLATE_STEP) {
        const last = i === idat.length - 1 && at + INFLATE_STEP >= part.length;
        inflater.push(part.subarray(at, at + INFLATE_STEP), last);
      }
    }
    if (idat.length === 0) throw new ImageError('image_corrupt', 'PNG has no IDAT chunk');
  } catch (error) {
    if (error instanceof ImageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const code = /unexpected EOF/i.test(message) ? 'image_truncated' : 'image_corrupt';
    throw new ImageError(code, `PNG image data cannot be inflated: ${message}`, { cause: error });
  }
  if (!ended || written !== expected) {
    throw new ImageError('image_corrupt', `PNG image data holds ${written} bytes, ${expected} expected`);
  }
  return out;
}

/**
 * Reverses the per-row PNG filters in place; `bpp` is bytes per complete pixel (at least 1). Stores into the
 * Uint8Array wrap modulo 256 by themselves; the first `bpp` bytes of a row (no left neighbour) and the first
 * row (no row above, which reads as zeros) are split out so the hot loops carry no conditions.
 */
function unfilter(raw: Uint8Array, offset: number, rowBytes: number, rows: number, bpp: number): void {
  const stride = rowBytes + 1;
  for (let y = 0; y < rows; y++) {
    const rowStart = offset + y * stride;
    const filter = raw[rowStart] as number;
    const cur = rowStart + 1;
    const prev = cur - stride; // only read when y > 0
    const first = Math.min(bpp, rowBytes);
    switch (filter) {
      case 0:
        break;
      case 1:
        for (let i = cur + bpp, end = cur + rowBytes; i < end; i++) {
          raw[i] = (raw[i] as number) + (raw[i - bpp] as number);
        }
        break;
      case 2:
        if (y === 0) break;
        for (let i = 0; i < rowBytes; i++)
          raw[cur + i] = (raw[cur + i] as number) + (raw[prev + i] as number);
        break;
      case 3:
        if (y === 0) {
          for (let i = bpp; i < rowBytes; i++) {
            raw[cur + i] = (raw[cur + i] as number) + ((raw[cur + i - bpp] as number) >> 1);
          }
          break;
        }
        for (let i = 0; i < first; i++)
          raw[cur + i] = (raw[cur + i] as number) + ((raw[prev + i] as number) >> 1);
        for (let i = bpp; i < rowBytes; i++) {
          const left = raw[cur + i - bpp] as number;
          raw[cur + i] = (raw[cur + i] as number) + ((left + (raw[prev + i] as number)) >> 1);
        }
        break;
      case 4:
        if (y === 0) {
          // No row above: b = c = 0, so Paeth picks the left byte (Sub).
          for (let i = bpp; i < rowBytes; i++)
            raw[cur + i] = (raw[cur + i] as number) + (raw[cur + i - bpp] as number);
          break;
        }
        // No left neighbour: a = c = 0, so Paeth picks the byte above (Up).
        for (let i = 0; i < first; i++) raw[cur + i] = (raw[cur + i] as number) + (raw[prev + i] as number);
        for (let i = bpp; i < rowBytes; i++) {
          const a = raw[cur + i - bpp] as number;
          const b = raw[prev + i] as number;
          const c = raw[prev + i - bpp] as number;
          // Paeth on p = a + b - c: |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|.
          let pa = b - c;
          let pb = a - c;
          let pc = pa + pb;
          pa = pa < 0 ? -pa : pa;
          pb = pb < 0 ? -pb : pb;
          pc = pc < 0 ? -pc : pc;
          raw[cur + i] = (raw[cur + i] as number) + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
        }
        break;
      default:
        throw new ImageError('image_corrupt', `PNG row ${y} has unknown filter type ${filter}`);
    }
  }
}

/** Output layout for a colour type: palette entries (RGBA) when indexed, and whether alpha is kept. */
interface Expansion {
  channels: 3 | 4;
  palette?: Uint8Array; // 4 bytes per entry
}

function expansionFor(header: PngHeader, chunks: PngChunks): Expansion {
  const { colorType } = header;
  if (colorType === 3) {
    const plte = chunks.palette;
    if (!plte || plte.length % 3 !== 0 || plte.length === 0) {
      throw new ImageError('image_corrupt', 'indexed PNG has a missing or malformed PLTE chunk');
    }
    const entries = plte.length / 3;
    const palette = new Uint8Array(256 * 4); // out-of-range indices read as opaque black
    palette.fill(255);
    for (let i = 0; i < 256; i++) {
      palette[i * 4] = i < entries ? (plte[i * 3] as number) : 0;
      palette[i * 4 + 1] = i < entries ? (plte[i * 3 + 1] as number) : 0;
      palette[i * 4 + 2] = i < entries ? (plte[i * 3 + 2] as number) : 0;
    }
    const trns = chunks.transparency;
    if (trns) for (let i = 0; i < trns.length && i < 256; i++) palette[i * 4 + 3] = trns[i] as number;
    return { channels: trns ? 4 : 3, palette };
  }
  // tRNS on gray/RGB images (one colour key) is ignored: the pixel keeps its colour, as HWC3 of RGB would.
  return { channels: colorType === 4 || colorType === 6 ? 4 : 3 };
}

/** Sample `index` of a row as 8 bits (sub-byte samples unscaled; 16-bit keeps its high byte, as libpng's strip_16 in cv2.imread). */
function sampleAt(raw: Uint8Array, rowStart: number, index: number, depth: number): number {
  if (depth === 8) return raw[rowStart + index] as number;
  if (depth === 16) return raw[rowStart + 2 * index] as number;
  const perByte = 8 / depth;
  const byte = raw[rowStart + Math.floor(index / perByte)] as number;
  const shift = 8 - depth * ((index % perByte) + 1);
  return (byte >> shift) & ((1 << depth) - 1);
}

function expandPass(
  raw: Uint8Array,
  offset: number,
  pass: Pass,
  header: PngHeader,
  expansion: Expansion,
  out: Uint8Array,
): void {
  const { colorType, bitDepth, width } = header;
  const samples = SAMPLES_PER_PIXEL[colorType] as number;
  const rowBytes = Math.ceil((pass.width * samples * bitDepth) / 8);
  const channels = expansion.channels;
  const fastCopy = bitDepth === 8 && !expansion.palette && samples === channels && pass.xStep === 1;
  const grayScale = colorType === 0 || colorType === 4 ? 255 / ((1 << Math.min(bitDepth, 8)) - 1) : 1;
  for (let py = 0; py < pass.height; py++) {
    const rowStart = offset + py * (rowBytes + 1) + 1;
    const y = pass.yStart + py * pass.yStep;
    if (fastCopy) {
      out.set(raw.subarray(rowStart, rowStart + rowBytes), y * width * channels);
      continue;
    }
    for (let px = 0; px < pass.width; px++) {
      const o = (y * width + pass.xStart + px * pass.xStep) * channels;
      if (expansion.palette) {
        const entry = sampleAt(raw, rowStart, px, bitDepth) * 4;
        out[o] = expansion.palette[entry] as number;
        out[o + 1] = expansion.palette[entry + 1] as number;
        out[o + 2] = expansion.palette[entry + 2] as number;
        if (channels === 4) out[o + 3] = expansion.palette[entry + 3] as number;
      } else if (colorType === 0 || colorType === 4) {
        const raw8 = sampleAt(raw, rowStart, px * samples, bitDepth);
        const gray = bitDepth < 8 ? Math.round(raw8 * grayScale) : raw8;
        out[o] = gray;
        out[o + 1] = gray;
        out[o + 2] = gray;
        if (colorType === 4) out[o + 3] = sampleAt(raw, rowStart, px * 2 + 1, bitDepth);
      } else {
        for (let c = 0; c < channels; c++) out[o + c] = sampleAt(raw, rowStart, px * samples + c, bitDepth);
      }
    }
  }
}

/** What decoding needs once the chunks are read: the output layout and the inflated size to expect. */
interface PngPlan {
  header: PngHeader;
  idat: Uint8Array[];
  expansion: Expansion;
  passes: Pass[];
  bitsPerPixel: number;
  expected: number;
}

function planPng(bytes: Uint8Array): PngPlan {
  const header = readPngHeader(bytes);
  const chunks = readChunks(bytes);
  const expansion = expansionFor(header, chunks);
  const samples = SAMPLES_PER_PIXEL[header.colorType] as number;
  const bitsPerPixel = samples * header.bitDepth;
  const passes = passesOf(header);
  let expected = 0;
  for (const pass of passes) expected += pass.height * (1 + Math.ceil((pass.width * bitsPerPixel) / 8));
  if (chunks.idat.length === 0) throw new ImageError('image_corrupt', 'PNG has no IDAT chunk');
  return { header, idat: chunks.idat, expansion, passes, bitsPerPixel, expected };
}

function unfilterAndExpand(plan: PngPlan, raw: Uint8Array): RgbImage {
  const { header, expansion, passes, bitsPerPixel } = plan;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const { width, height } = header;
  const out = new Uint8Array(width * height * expansion.channels);
  let offset = 0;
  for (const pass of passes) {
    const rowBytes = Math.ceil((pass.width * bitsPerPixel) / 8);
    unfilter(raw, offset, rowBytes, pass.height, bpp);
    expandPass(raw, offset, pass, header, expansion, out);
    offset += pass.height * (rowBytes + 1);
  }
  return { width, height, channels: expansion.channels, data: out };
}

/** Decodes a whole PNG (any colour type, bit depth and interlace) to 8-bit RGB or RGBA; inflates in JS. */
export function decodePng(bytes: Uint8Array): RgbImage {
  const plan = planPng(bytes);
  return unfilterAndExpand(plan, inflateBounded(plan.idat, plan.expected));
}

/** {@link decodePng}, inflating with the runtime's native zlib (DecompressionStream) where there is one. */
export async function decodePngAsync(bytes: Uint8Array): Promise<RgbImage> {
  const plan = planPng(bytes);
  const raw = hasNativeZlib()
    ? await inflateNative(plan.idat, plan.expected, 'PNG')
    : inflateBounded(plan.idat, plan.expected);
  return unfilterAndExpand(plan, raw);
}

/** Options for {@link encodePng}. */
export interface EncodePngOptions {
  /** zlib level 0..9; default 6 trades size for the CPU budget of the edge. */
  level?: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
}

/** True when a one-channel image holds only 0 and 255 (edge maps, scribbles): it can be stored in 1 bit. */
function isBinaryGray(img: Image8): boolean {
  if (img.channels !== 1) return false;
  const data = img.data;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (v !== 0 && v !== 255) return false;
  }
  return true;
}

/** Packs 0/255 gray into 1-bit rows, most significant bit first, each row starting on a byte. */
function packBits(img: Image8): Uint8Array {
  const { width, height, data } = img;
  const rowBytes = (width + 7) >> 3;
  const packed = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[y * width + x] === 0) continue;
      const at = y * rowBytes + (x >> 3);
      packed[at] = (packed[at] as number) | (0x80 >> (x & 7));
    }
  }
  return packed;
}

/**
 * Encodes an 8-bit gray, gray+alpha, RGB or RGBA image as PNG (fast-png does the filtering and deflate).
 * A gray image holding only 0 and 255 (canny, scribble) is stored as a 1-bit grayscale PNG: same pixels once
 * decoded, an eighth of the data to deflate.
 */
export function encodePng(img: Image8, options: EncodePngOptions = {}): Uint8Array {
  assertImage(img, [1, 2, 3, 4], 'encodePng');
  const zlib = { level: options.level ?? 6 };
  if (isBinaryGray(img)) {
    return fastPngEncode(
      { width: img.width, height: img.height, channels: 1, depth: 1, data: packBits(img) },
      { zlib },
    );
  }
  return fastPngEncode(
    { width: img.width, height: img.height, channels: img.channels, depth: 8, data: img.data },
    { zlib },
  );
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/**
 * {@link encodePng} for the edge: a 0/255 map (canny, scribble) becomes a 1-bit grey PNG deflated by the
 * runtime's native CompressionStream (unfiltered rows: a 1-bit edge map gains little from filters). Other
 * images, or a runtime without the Compression Streams API, go through {@link encodePng}.
 */
export async function encodePngAsync(img: Image8, options: EncodePngOptions = {}): Promise<Uint8Array> {
  assertImage(img, [1, 2, 3, 4], 'encodePng');
  if (!hasNativeZlib() || !isBinaryGray(img)) return encodePng(img, options);
  const { width, height, data } = img;
  const rowBytes = (width + 7) >> 3;
  const rows = new Uint8Array((rowBytes + 1) * height); // each row: filter byte 0, then the packed bits
  const whole = width >> 3; // bytes with all eight pixels in the row
  for (let y = 0; y < height; y++) {
    const rowStart = y * (rowBytes + 1) + 1;
    let s = y * width;
    for (let b = 0; b < whole; b++, s += 8) {
      rows[rowStart + b] =
        ((data[s] as number) & 0x80) |
        (((data[s + 1] as number) & 0x80) >> 1) |
        (((data[s + 2] as number) & 0x80) >> 2) |
        (((data[s + 3] as number) & 0x80) >> 3) |
        (((data[s + 4] as number) & 0x80) >> 4) |
        (((data[s + 5] as number) & 0x80) >> 5) |
        (((data[s + 6] as number) & 0x80) >> 6) |
        (((data[s + 7] as number) & 0x80) >> 7);
    }
    let last = 0;
    for (let k = 0; k < (width & 7); k++) last |= ((data[s + k] as number) & 0x80) >> k;
    if (width & 7) rows[rowStart + whole] = last;
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale; compression, filter and interlace methods 0
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk('IHDR', ihdr),
    chunk('IDAT', await deflateNative(rows)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
