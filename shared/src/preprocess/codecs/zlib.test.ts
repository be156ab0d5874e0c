import { readFileSync } from 'node:fs';
import { crc32 as nodeCrc32 } from 'node:zlib';
import { zlibSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { decodePng, decodePngAsync, encodePng, encodePngAsync } from './png.ts';
import { crc32, hasNativeZlib, inflateNative, inflateStream } from './zlib.ts';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url)));

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'no error';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe('native zlib (Compression Streams)', () => {
  it('is there in Node, as in workerd', () => {
    expect(hasNativeZlib()).toBe(true);
  });

  it('decodes the same pixels as the JS inflater, for every filter type cv2 wrote', async () => {
    for (const name of ['canny/house.in.png', 'decode/orientation-3.png', 'decode/palette4-trns.png']) {
      const png = fixture(name);
      const native = await decodePngAsync(png);
      const js = decodePng(png);
      expect([native.width, native.height, native.channels]).toEqual([js.width, js.height, js.channels]);
      expect(Buffer.compare(native.data, js.data)).toBe(0);
    }
  });

  // node:zlib (Node, workerd with nodejs_compat) and the Compression Streams fallback behave the same.
  it.each([
    ['node:zlib', inflateNative],
    ['DecompressionStream', inflateStream],
  ])(
    '%s: inflates split input, stops a bomb at the bound, calls a cut stream truncated',
    async (_, inflate) => {
      const data = Uint8Array.from({ length: 50_000 }, (_, i) => (i * 31) % 251);
      const whole = zlibSync(data);
      const split = [whole.subarray(0, 1000), whole.subarray(1000, 1001), whole.subarray(1001)];
      expect(Buffer.compare(await inflate(split, data.length, 'PNG'), data)).toBe(0);
      const bomb = zlibSync(new Uint8Array(4 * 1024 * 1024));
      expect(await codeOf(inflate([bomb], 1000, 'PNG'))).toBe('image_corrupt');
      expect(await codeOf(inflate([whole], data.length + 1, 'PNG'))).toBe('image_corrupt'); // too little data
      expect(await codeOf(inflate([whole], data.length - 1, 'PNG'))).toBe('image_corrupt'); // too much
      expect(await codeOf(inflate([whole.subarray(0, whole.length - 8)], data.length, 'PNG'))).toBe(
        'image_truncated',
      );
      expect(await codeOf(inflate([Uint8Array.of(1, 2, 3, 4, 5, 6)], data.length, 'PNG'))).toBe(
        'image_corrupt',
      );
    },
  );

  it('computes the PNG CRC-32', () => {
    const bytes = new TextEncoder().encode('IEND');
    expect(crc32(bytes)).toBe(0xae426082); // the CRC every PNG's IEND chunk carries
    const noise = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 255);
    expect(crc32(noise)).toBe(nodeCrc32(noise));
  });

  it('writes a 0/255 map as a 1-bit PNG that decodes to the same pixels', async () => {
    const width = 37;
    const height = 11;
    const data = Uint8Array.from({ length: width * height }, (_, i) => ((i * 13) % 5 === 0 ? 255 : 0));
    const png = await encodePngAsync({ width, height, channels: 1, data });
    expect(png[24]).toBe(1); // IHDR bit depth
    const back = decodePng(png);
    expect(back.channels).toBe(3);
    for (let i = 0; i < data.length; i++) expect(back.data[i * 3]).toBe(data[i]);
    // Non-binary images take encodePng's path.
    const gray = { width: 3, height: 1, channels: 1 as const, data: Uint8Array.of(0, 128, 255) };
    expect(Buffer.compare(await encodePngAsync(gray), encodePng(gray))).toBe(0);
  });
});
