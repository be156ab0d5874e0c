import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canny } from './canny.ts';
import { decodeImage } from './decode.ts';
import { ImageError } from './errors.ts';
import type { Image8 } from './image.ts';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../test/fixtures/canny/${name}`, import.meta.url)));

const cases = [
  ...['house', 'toy'].flatMap((photo) =>
    [
      [100, 200],
      [50, 150],
    ].map(([low, high]) => ({ photo, low: low as number, high: high as number })),
  ),
  // Blocky noise (RGB and its grey): every gradient direction, channel tie and border case, at two thresholds.
  ...['noise', 'noise-gray', 'noise-odd'].flatMap((photo) =>
    [
      [100, 200],
      [20, 60],
    ].map(([low, high]) => ({ photo, low: low as number, high: high as number })),
  ),
];

function firstChannel(img: Image8): Image8<1> {
  const data = new Uint8Array(img.width * img.height);
  for (let i = 0; i < data.length; i++) data[i] = img.data[i * img.channels] as number;
  return { width: img.width, height: img.height, channels: 1, data };
}

describe('canny matches cv2.Canny (OpenCV 4.6, aperture 3, L1)', () => {
  it.each(cases)('$photo at $low/$high', async ({ photo, low, high }) => {
    const decoded = await decodeImage(fixture(`${photo}.in.png`));
    // The grey fixture is fed as one channel, as cv2.Canny got it (the decoder expands grey to RGB).
    const input = photo.endsWith('-gray') ? firstChannel(decoded) : decoded;
    const reference = await decodeImage(fixture(`${photo}.canny_${low}_${high}.png`));
    const edges = canny(input, { low, high });
    expect(edges.width).toBe(reference.width);
    expect(edges.height).toBe(reference.height);
    let equal = 0;
    let edgePixels = 0;
    let notBinary = 0;
    const pixels = edges.width * edges.height;
    for (let i = 0; i < pixels; i++) {
      const ours = edges.data[i] as number;
      if (ours === reference.data[i * reference.channels]) equal++;
      if (ours === 255) edgePixels++;
      else if (ours !== 0) notBinary++;
    }
    expect(notBinary).toBe(0);
    // Both maps must actually contain edges, or equality would be trivial.
    expect(edgePixels).toBeGreaterThan(pixels * 0.01);
    expect(pixels - equal).toBe(0); // bit-exact
  });

  it('swaps thresholds given in the wrong order, as OpenCV does', async () => {
    const input = await decodeImage(fixture('toy.in.png'));
    expect(canny(input, { low: 200, high: 100 }).data).toEqual(canny(input, { low: 100, high: 200 }).data);
  });

  it('treats RGBA as RGB composited over white and accepts gray', () => {
    const rgba = { width: 4, height: 4, channels: 4 as const, data: new Uint8Array(64) }; // transparent black
    const rgb = { width: 4, height: 4, channels: 3 as const, data: new Uint8Array(48).fill(255) };
    expect(canny(rgba, { low: 10, high: 20 }).data).toEqual(canny(rgb, { low: 10, high: 20 }).data);
    const gray = {
      width: 3,
      height: 3,
      channels: 1 as const,
      data: Uint8Array.of(0, 0, 255, 0, 0, 255, 0, 0, 255),
    };
    expect(Array.from(canny(gray, { low: 10, high: 20 }).data)).toEqual([0, 255, 0, 0, 255, 0, 0, 255, 0]);
  });

  it('refuses malformed images and thresholds with image_invalid_argument', () => {
    const bad = { width: 4, height: 4, channels: 3 as const, data: new Uint8Array(10) };
    expect(() => canny(bad, { low: 1, high: 2 })).toThrow(ImageError);
    const ok = { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12) };
    try {
      canny(ok, { low: Number.NaN, high: 2 });
      expect.unreachable();
    } catch (error) {
      expect((error as ImageError).code).toBe('image_invalid_argument');
    }
  });
});
