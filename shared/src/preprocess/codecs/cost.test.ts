import { encode as jpegJsEncode } from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { manyScanJpeg, zeroPng16 } from '../../../test/hostile-images.ts';
import { decodeImage, MAX_DECODE_WORK } from '../decode.ts';
import { assertDecodeWork, decodeWork, MAX_JPEG_SCANS } from './cost.ts';
import { encodePng } from './png.ts';

const codeOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
    return 'decoded';
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('decode work is bounded before decoding', () => {
  it('the hostile generators make files a decoder accepts (so the limits are what stops them)', async () => {
    const jpeg = manyScanJpeg(64, 48, 12);
    const image = await decodeImage(jpeg);
    expect([image.width, image.height]).toEqual([64, 48]);
    expect(image.data.every((v) => v === 128)).toBe(true); // DC 0, no AC: mid grey
    const png = await decodeImage(zeroPng16(40, 30, true));
    expect([png.width, png.height, png.channels]).toEqual([40, 30, 4]);
    expect(png.data.every((v) => v === 0)).toBe(true);
  });

  it('counts every progressive scan and refuses more than the cap', async () => {
    expect(decodeWork(manyScanJpeg(64, 64, 30)).scans).toBe(30);
    const tooMany = manyScanJpeg(64, 64, MAX_JPEG_SCANS + 1);
    expect(() => decodeWork(tooMany)).toThrow(/scans/);
    expect(await codeOf(decodeImage(tooMany))).toBe('image_too_large');
    // The file: 4000x4000 with 2,000 scans, well under 100 KB.
    const attack = manyScanJpeg(4000, 4000, 2000);
    expect(attack.length).toBeLessThan(100_000);
    expect(await codeOf(decodeImage(attack))).toBe('image_too_large');
  });

  it('charges extra scans per pixel, so many scans of a large frame are refused under the cap', async () => {
    const few = decodeWork(manyScanJpeg(2048, 2048, 2));
    const many = decodeWork(manyScanJpeg(2048, 2048, 90));
    expect(many.units).toBeGreaterThan(few.units * 4);
    expect(await codeOf(decodeImage(manyScanJpeg(4096, 4096, 90)))).toBe('image_too_large');
  });

  it('charges PNG by bits per pixel and interlacing', () => {
    const plain = decodeWork(zeroPng16(256, 256));
    const adam7 = decodeWork(zeroPng16(256, 256, true));
    const rgb8 = decodeWork(
      encodePng({ width: 256, height: 256, channels: 3, data: new Uint8Array(256 * 256 * 3) }),
    );
    expect(plain.units).toBeGreaterThan(rgb8.units);
    expect(adam7.units).toBeGreaterThan(plain.units);
    expect(() => assertDecodeWork(zeroPng16(256, 256, true), plain.units)).toThrow(/decode work/);
  });

  it('admits ordinary large images under the default limit', () => {
    const rgba = new Uint8Array(4096 * 64 * 4);
    const wide = jpegJsEncode({ width: 4096, height: 64, data: rgba }, 80).data;
    expect(decodeWork(new Uint8Array(wide)).units).toBe(4096 * 64);
    // A 4096x4096 baseline JPEG costs one unit per pixel: inside the default.
    expect(4096 * 4096).toBeLessThan(MAX_DECODE_WORK);
  });
});
