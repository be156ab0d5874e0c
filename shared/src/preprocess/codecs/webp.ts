import webpDecode, { init as initDecoder } from '@jsquash/webp/decode.js';
import webpEncode, { init as initEncoder } from '@jsquash/webp/encode.js';
import { ImageError } from '../errors.ts';
import type { Image8, RgbImage } from '../image.ts';
import { assertImage } from '../validate.ts';

// WebP goes through libwebp compiled to wasm (@jsquash/webp, from Squoosh): no maintained pure-JS decoder exists.
// Workers cannot compile wasm from bytes at run time, so the runtime hands over compiled modules:
//   workerd: `import dec from '@jsquash/webp/codec/dec/webp_dec.wasm'` (bundled as a WebAssembly.Module);
//   Node:    `new WebAssembly.Module(readFileSync(require.resolve('@jsquash/webp/codec/dec/webp_dec.wasm')))`.
// The encoder module must be the SIMD build (codec/enc/webp_enc_simd.wasm): both runtimes support wasm SIMD and
// @jsquash picks that build when SIMD is available.

/** The ImageData shape the codec reads and writes (declared here: Workers' types have no DOM ImageData). */
type CodecImageData = Parameters<typeof webpEncode>[0];

type InitWithModule = (module: WebAssembly.Module) => Promise<unknown>;

let decoderReady: Promise<unknown> | undefined;
let encoderReady: Promise<unknown> | undefined;

/** Compiled libwebp modules for {@link registerWebpCodec}. */
export interface WebpModules {
  decoder?: WebAssembly.Module;
  encoder?: WebAssembly.Module;
}

/** Makes WebP decoding (and encoding, when given the encoder) available; call once at start-up. */
export function registerWebpCodec(modules: WebpModules): void {
  if (modules.decoder) decoderReady = (initDecoder as unknown as InitWithModule)(modules.decoder);
  if (modules.encoder) encoderReady = (initEncoder as unknown as InitWithModule)(modules.encoder);
}

/** True when `bytes` starts with a RIFF/WEBP header. */
export function isWebp(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 12 &&
    bytes[0] === 0x52 &&
    bytes[1] === 0x49 &&
    bytes[2] === 0x46 &&
    bytes[3] === 0x46 &&
    bytes[8] === 0x57 &&
    bytes[9] === 0x45 &&
    bytes[10] === 0x42 &&
    bytes[11] === 0x50
  );
}

function u16le(bytes: Uint8Array, at: number): number {
  return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
}
function u24le(bytes: Uint8Array, at: number): number {
  return u16le(bytes, at) | ((bytes[at + 2] as number) << 16);
}
function u32le(bytes: Uint8Array, at: number): number {
  return (u24le(bytes, at) | ((bytes[at + 3] as number) << 24)) >>> 0;
}

/** Canvas size from the first chunk (VP8, VP8L or VP8X); refuses animations and cut files. */
export function readWebpHeader(bytes: Uint8Array): { width: number; height: number } {
  if (bytes.length < 30) throw new ImageError('image_truncated', 'WebP ends inside its header');
  if (8 + u32le(bytes, 4) > bytes.length) {
    throw new ImageError('image_truncated', 'WebP is shorter than its RIFF header says');
  }
  const fourcc = String.fromCharCode(...bytes.subarray(12, 16));
  const data = 20;
  if (fourcc === 'VP8 ') {
    if (bytes[data + 3] !== 0x9d || bytes[data + 4] !== 0x01 || bytes[data + 5] !== 0x2a) {
      throw new ImageError('image_corrupt', 'WebP VP8 frame has no start code');
    }
    return { width: u16le(bytes, data + 6) & 0x3fff, height: u16le(bytes, data + 8) & 0x3fff };
  }
  if (fourcc === 'VP8L') {
    if (bytes[data] !== 0x2f) throw new ImageError('image_corrupt', 'WebP VP8L stream has no signature');
    const bits = u32le(bytes, data + 1);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (fourcc === 'VP8X') {
    if (((bytes[data] as number) & 0x02) !== 0) {
      throw new ImageError('image_unsupported_type', 'animated WebP is not supported');
    }
    return { width: u24le(bytes, data + 4) + 1, height: u24le(bytes, data + 7) + 1 };
  }
  throw new ImageError('image_corrupt', `WebP starts with an unknown chunk '${fourcc}'`);
}

/** Decodes a still WebP (lossy or lossless) to RGBA, or RGB when every pixel is opaque. */
export async function decodeWebp(bytes: Uint8Array): Promise<RgbImage> {
  if (!decoderReady) {
    throw new ImageError(
      'image_unsupported_type',
      'WebP decoding is not set up in this runtime (registerWebpCodec was not called)',
    );
  }
  await decoderReady;
  let decoded: CodecImageData;
  try {
    // The codec takes an ArrayBuffer of exactly the file.
    decoded = await webpDecode(bytes.slice().buffer);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ImageError('image_corrupt', `WebP cannot be decoded: ${message}`, { cause: error });
  }
  const { width, height } = decoded;
  const rgba = new Uint8Array(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) {
      opaque = false;
      break;
    }
  }
  if (!opaque) return { width, height, channels: 4, data: rgba };
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    rgb[o] = rgba[i] as number;
    rgb[o + 1] = rgba[i + 1] as number;
    rgb[o + 2] = rgba[i + 2] as number;
  }
  return { width, height, channels: 3, data: rgb };
}

/** Encodes gray, RGB or RGBA as WebP (`quality` 0..100, or `lossless`); needs the registered encoder. */
export async function encodeWebp(img: Image8, options: { quality?: number; lossless?: boolean } = {}) {
  assertImage(img, [1, 3, 4], 'encodeWebp');
  if (!encoderReady) {
    throw new ImageError(
      'image_unsupported_type',
      'WebP encoding is not set up in this runtime (registerWebpCodec was not called with an encoder)',
    );
  }
  await encoderReady;
  const { width, height, channels, data } = img;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, s = 0, o = 0; i < width * height; i++, s += channels, o += 4) {
    rgba[o] = data[s] as number;
    rgba[o + 1] = data[channels === 1 ? s : s + 1] as number;
    rgba[o + 2] = data[channels === 1 ? s : s + 2] as number;
    rgba[o + 3] = channels === 4 ? (data[s + 3] as number) : 255;
  }
  const imageData = { width, height, data: rgba, colorSpace: 'srgb' } as CodecImageData;
  const encoded = await webpEncode(imageData, {
    quality: options.quality ?? 90,
    lossless: options.lossless ? 1 : 0,
  });
  return new Uint8Array(encoded);
}
