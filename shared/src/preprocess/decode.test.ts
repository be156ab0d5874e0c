import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { convertIndexedToRgb, decode as fastPngDecode, encode as fastPngEncode } from 'fast-png';
import { deflateSync, zlibSync } from 'fflate';
import { encode as jpegJsEncode } from 'jpeg-js';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, readImageHeader } from './decode.ts';
import { encodeJpeg, encodePng, encodeWebp, type ImageErrorCode, registerWebpCodec } from './index.ts';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../test/fixtures/canny/${name}`, import.meta.url)));

/** Deterministic pseudo-random bytes (LCG) so failures reproduce. */
function noise(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Index of the first differing byte, -1 when equal (vitest's deep equality is slow on large arrays). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function errorCode(promise: Promise<unknown>): Promise<ImageErrorCode | string> {
  try {
    await promise;
  } catch (error) {
    return (error as { code?: string }).code ?? `no code: ${String(error)}`;
  }
  return 'no error';
}

/** A PNG with the given IHDR and a raw zlib payload as its only IDAT, chunk CRCs left at zero. */
function handmadePng(width: number, height: number, zlibData: Uint8Array): Uint8Array {
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    new DataView(out.buffer).setUint32(0, body.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(body, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlibData),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('PNG decoding agrees with fast-png on every colour type', () => {
  const width = 13;
  const height = 7;
  const pixels = width * height;

  it.each([
    { name: 'RGB 8', channels: 3, depth: 8 },
    { name: 'RGBA 8', channels: 4, depth: 8 },
    { name: 'gray 8', channels: 1, depth: 8 },
    { name: 'gray+alpha 8', channels: 2, depth: 8 },
    { name: 'RGB 16', channels: 3, depth: 16 },
    { name: 'RGBA 8 Adam7', channels: 4, depth: 8, interlace: true },
  ] as const)('$name', async ({ channels, depth, ...rest }) => {
    const interlace = 'interlace' in rest;
    const samples = noise(pixels * channels * (depth / 8), 7);
    const data = depth === 16 ? new Uint16Array(samples.buffer) : samples;
    const png = fastPngEncode(
      { width, height, channels, depth, data },
      interlace ? { interlace: 'Adam7' } : {},
    );
    if (interlace) expect(png[28]).toBe(1);
    const reference = fastPngDecode(png);
    const ours = await decodeImage(png);
    const outChannels = channels === 2 || channels === 4 ? 4 : 3;
    expect(ours).toMatchObject({ width, height, channels: outChannels });
    const expected = new Uint8Array(pixels * outChannels);
    for (let i = 0; i < pixels; i++) {
      for (let c = 0; c < outChannels; c++) {
        const source = channels <= 2 ? (c < 3 ? 0 : 1) : c; // gray is replicated, alpha follows it
        const v = reference.data[i * channels + source] as number;
        expected[i * outChannels + c] = depth === 16 ? v >> 8 : v; // the high byte, as cv2.imread keeps
      }
    }
    expect(ours.data).toEqual(expected);
  });

  it('expands low bit depths and palettes', async () => {
    const oneBit = fastPngEncode({
      width: 8,
      height: 2,
      channels: 1,
      depth: 1,
      data: Uint8Array.of(0b10110000, 1),
    });
    expect(Array.from((await decodeImage(oneBit)).data.filter((_, i) => i % 3 === 0))).toEqual([
      255, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255,
    ]);
    const palette = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [9, 8, 7],
    ];
    const indices = Uint8Array.from({ length: 15 }, (_, i) => i % 4);
    const png = fastPngEncode({ width: 5, height: 3, channels: 1, depth: 8, data: indices, palette });
    const reference = convertIndexedToRgb(fastPngDecode(png));
    const ours = await decodeImage(png);
    expect(ours.channels).toBe(3);
    expect(ours.data).toEqual(new Uint8Array(reference));
  });

  it('decodes the photo fixture and round-trips through encodePng', async () => {
    const bytes = fixture('toy.in.png');
    const image = await decodeImage(bytes);
    expect(firstDifference(image.data, new Uint8Array(fastPngDecode(bytes).data))).toBe(-1);
    const again = await decodeImage(encodePng(image, { level: 1 }));
    expect(firstDifference(again.data, image.data)).toBe(-1);
  });
});

describe('PNG encoding', () => {
  it('stores 0/255 gray maps in 1 bit and reads them back unchanged', async () => {
    const data = Uint8Array.from({ length: 13 * 5 }, (_, i) => (i % 3 === 0 ? 255 : 0));
    const png = encodePng({ width: 13, height: 5, channels: 1, data });
    expect(png[24]).toBe(1); // IHDR bit depth
    const back = await decodeImage(png);
    expect(Array.from(back.data.filter((_, i) => i % 3 === 0))).toEqual(Array.from(data));
  });
});

describe('JPEG', () => {
  it('decodes a JPEG from jpeg-js and encodes one it can read back', async () => {
    const width = 64;
    const height = 48;
    const rgba = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) rgba.set([x * 4, y * 5, 128, 255], (y * width + x) * 4);
    }
    const jpeg = new Uint8Array(jpegJsEncode({ width, height, data: rgba }, 95).data);
    expect(readImageHeader(jpeg)).toEqual({ format: 'jpeg', width, height, orientation: 1 });
    const decoded = await decodeImage(jpeg);
    expect(decoded).toMatchObject({ width, height, channels: 3 });
    let worst = 0;
    for (let i = 0; i < width * height; i++) {
      for (let c = 0; c < 3; c++) {
        worst = Math.max(worst, Math.abs((decoded.data[i * 3 + c] as number) - (rgba[i * 4 + c] as number)));
      }
    }
    expect(worst).toBeLessThan(12);
    const ours = encodeJpeg(decoded, 90);
    expect((await decodeImage(ours)).width).toBe(width);
  });
});

describe('WebP through libwebp wasm', () => {
  beforeAll(() => {
    const require = createRequire(import.meta.url);
    const wasm = (path: string) => new WebAssembly.Module(readFileSync(require.resolve(path)));
    registerWebpCodec({
      decoder: wasm('@jsquash/webp/codec/dec/webp_dec.wasm'),
      encoder: wasm('@jsquash/webp/codec/enc/webp_enc_simd.wasm'),
    });
  });

  it('round-trips lossless RGB and RGBA exactly', async () => {
    const rgb = { width: 31, height: 17, channels: 3 as const, data: noise(31 * 17 * 3, 3) };
    const webp = await encodeWebp(rgb, { lossless: true });
    expect(readImageHeader(webp)).toEqual({ format: 'webp', width: 31, height: 17, orientation: 1 });
    expect(await decodeImage(webp)).toEqual(rgb);
    const rgba = { width: 9, height: 5, channels: 4 as const, data: noise(9 * 5 * 4, 4) };
    rgba.data.forEach((_, i) => {
      if (i % 4 === 3) rgba.data[i] = 255; // libwebp drops the colour of fully transparent pixels
    });
    rgba.data[3] = 10;
    expect(await decodeImage(await encodeWebp(rgba, { lossless: true }))).toEqual(rgba);
  });

  it('reports truncated and corrupt WebP', async () => {
    const webp = await encodeWebp(
      { width: 40, height: 40, channels: 3, data: noise(4800, 5) },
      { quality: 80 },
    );
    expect(await errorCode(decodeImage(webp.subarray(0, webp.length - 20)))).toBe('image_truncated');
    const broken = webp.slice();
    broken.fill(0x55, 40);
    expect(await errorCode(decodeImage(broken))).toBe('image_corrupt');
  });
});

describe('bad input has a clear error code', () => {
  it('wrong type', async () => {
    const gif = new TextEncoder().encode('GIF89a\u0001\u0000\u0001\u0000\u0000\u0000\u0000;');
    expect(await errorCode(decodeImage(gif))).toBe('image_unsupported_type');
    expect(await errorCode(decodeImage(new TextEncoder().encode('{"not":"an image"}')))).toBe(
      'image_unsupported_type',
    );
    expect(await errorCode(decodeImage('not bytes' as unknown as Uint8Array))).toBe('image_invalid_argument');
  });

  it('truncated', async () => {
    const png = fixture('toy.in.png');
    expect(await errorCode(decodeImage(new Uint8Array(0)))).toBe('image_truncated');
    expect(await errorCode(decodeImage(png.subarray(0, 20)))).toBe('image_truncated');
    expect(await errorCode(decodeImage(png.subarray(0, png.length / 2)))).toBe('image_truncated');
    const jpeg = encodeJpeg({ width: 32, height: 32, channels: 3, data: noise(3072, 9) });
    expect(await errorCode(decodeImage(jpeg.subarray(0, jpeg.length - 100)))).toBe('image_truncated');
    expect(await errorCode(decodeImage(jpeg.subarray(0, 10)))).toBe('image_truncated');
  });

  it('corrupt', async () => {
    const png = fixture('toy.in.png').slice();
    png.fill(0xa5, 1000, 2000); // scribble over compressed pixel data
    expect(await errorCode(decodeImage(png))).toBe('image_corrupt');
    const badHeader = fixture('toy.in.png').slice();
    badHeader[25] = 5; // no such PNG colour type
    expect(await errorCode(decodeImage(badHeader))).toBe('image_corrupt');
    const jpeg = encodeJpeg({ width: 32, height: 32, channels: 3, data: noise(3072, 9) });
    const badJpeg = jpeg.slice();
    badJpeg[3] = 0x00; // the first segment loses its marker
    badJpeg[2] = 0x00;
    expect(await errorCode(decodeImage(Uint8Array.of(0xff, 0xd8, 0xff, ...badJpeg.subarray(3))))).toBe(
      'image_corrupt',
    );
  });

  it('oversized by bytes or by pixels, refused from the header', async () => {
    const png = fixture('toy.in.png');
    expect(await errorCode(decodeImage(png, { maxBytes: 1000 }))).toBe('image_too_large');
    expect(await errorCode(decodeImage(png, { maxPixels: 512 * 511 }))).toBe('image_too_large');
    // 100000 x 100000 claimed by a 60-byte file: refused before anything is inflated.
    const giant = handmadePng(100_000, 100_000, zlibSync(new Uint8Array(10)));
    expect(await errorCode(decodeImage(giant))).toBe('image_too_large');
  });

  it('decompression bomb: more image data than the header allows is refused without inflating it all', async () => {
    const bomb = handmadePng(16, 16, zlibSync(new Uint8Array(64 * 1024 * 1024)));
    expect(bomb.length).toBeLessThan(100_000);
    const started = performance.now();
    expect(await errorCode(decodeImage(bomb))).toBe('image_corrupt');
    expect(performance.now() - started).toBeLessThan(5000);
    // A raw deflate stream without the zlib wrapper is corrupt too.
    expect(await errorCode(decodeImage(handmadePng(2, 2, deflateSync(new Uint8Array(14)))))).toBe(
      'image_corrupt',
    );
  });
});
