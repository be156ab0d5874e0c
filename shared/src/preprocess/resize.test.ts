import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resizeImage, resizeImageTo, resizeTarget } from './resize.ts';

// resize_image references from shared/test/fixtures/cv-resize (make_fixtures.py there, cv2 4.6).
interface ResizeImageCase {
  src: [number, number];
  channels: number;
  resolution: number;
  dst: [number, number];
  input: number;
  output: number;
}
const fixtures = new URL('../../test/fixtures/cv-resize/', import.meta.url);
const resizeImageCases = (
  JSON.parse(readFileSync(new URL('manifest.json', fixtures), 'utf8')) as { resize_image: ResizeImageCase[] }
).resize_image;
const blob = readFileSync(new URL('cases.bin', fixtures));

describe('resize_image against cv2', () => {
  it('is bit-identical to the original on Lanczos, area (2x, fractional, mixed-axis) and grey cases', () => {
    expect(resizeImageCases.length).toBe(5);
    for (const c of resizeImageCases) {
      const [width, height] = c.src;
      const data = new Uint8Array(blob.subarray(c.input, c.input + width * height * c.channels));
      const want = blob.subarray(c.output, c.output + c.dst[0] * c.dst[1] * c.channels);
      const img = { width, height, channels: c.channels, data };
      const out = resizeImage(img, c.resolution);
      expect([out.width, out.height]).toEqual(c.dst);
      expect(Buffer.from(out.data).equals(want)).toBe(true);
      // The exact-size entry point picks the same interpolation for resize_image's own target size.
      expect(Buffer.from(resizeImageTo(img, c.dst[0], c.dst[1]).data).equals(want)).toBe(true);
    }
  });
});

describe('resize_image', () => {
  it('sizes like the original: short side to the resolution, sides to multiples of 64, numpy half-to-even', () => {
    expect(resizeTarget(600, 400, 512)).toEqual({ width: 768, height: 512, upscale: true });
    expect(resizeTarget(1024, 2048, 512)).toEqual({ width: 512, height: 1024, upscale: false });
    // 544 / 64 = 8.5 rounds to 8 and 608 / 64 = 9.5 rounds to 10, as np.round does.
    expect(resizeTarget(544, 512, 512)).toEqual({ width: 512, height: 512, upscale: false });
    expect(resizeTarget(608, 512, 512)).toEqual({ width: 640, height: 512, upscale: false });
  });

  it('area downscaling averages whole source blocks', () => {
    const width = 256;
    const height = 128;
    const data = new Uint8Array(width * height);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) data[y * width + x] = (x + y) % 2 ? 200 : 100;
    const small = resizeImage({ width, height, channels: 1, data }, 64);
    expect(small).toMatchObject({ width: 128, height: 64 });
    expect(small.data.every((v) => v === 150)).toBe(true);
  });

  it('Lanczos upscaling keeps flat areas flat and follows a smooth ramp', () => {
    const width = 64;
    const height = 64;
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) data.set([x * 2, 90, 90], (y * width + x) * 3);
    }
    const big = resizeImage({ width, height, channels: 3, data }, 128);
    expect(big).toMatchObject({ width: 128, height: 128, channels: 3 });
    for (let x = 8; x < 120; x++) {
      // Output pixel centre x maps to source (x + 0.5) / 2 - 0.5, where the ramp is worth twice that.
      const expected = 2 * ((x + 0.5) / 2 - 0.5);
      expect(Math.abs((big.data[(40 * 128 + x) * 3] as number) - expected)).toBeLessThanOrEqual(1);
      expect(big.data[(40 * 128 + x) * 3 + 1]).toBe(90);
    }
  });
});

describe('resizeImageTo', () => {
  it('produces the exact size and keeps a flat image flat on both axes', () => {
    const flat = { width: 300, height: 200, channels: 3, data: new Uint8Array(300 * 200 * 3).fill(77) };
    const out = resizeImageTo(flat, 512, 128);
    expect([out.width, out.height, out.channels]).toEqual([512, 128, 3]);
    expect(out.data.every((v) => v === 77)).toBe(true);
    expect(resizeImageTo(flat, 300, 200)).toBe(flat);
    expect(() => resizeImageTo(flat, 0, 10)).toThrow(/cannot resize/);
  });
});
