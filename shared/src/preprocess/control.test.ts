import { describe, expect, it } from 'vitest';
import { canny } from './canny.ts';
import { invert, lineart, preprocess, scribble } from './control.ts';
import { hwc3, toControlMap } from './convert.ts';
import { ImageError } from './errors.ts';

describe('HWC3 and control maps follow the original apps', () => {
  it('composites RGBA over white with numpy float32 truncation', () => {
    // Expected values computed with numpy from the original HWC3 code.
    const rgba = {
      width: 4,
      height: 1,
      channels: 4 as const,
      data: Uint8Array.of(100, 50, 0, 128, 255, 255, 255, 0, 10, 20, 30, 255, 200, 201, 202, 1),
    };
    expect(Array.from(hwc3(rgba).data)).toEqual([177, 152, 126, 255, 255, 255, 10, 20, 30, 254, 254, 254]);
  });

  it('replicates gray and scales to [0, 1] float RGB', () => {
    const gray = { width: 2, height: 1, channels: 1 as const, data: Uint8Array.of(0, 255) };
    const map = toControlMap(gray);
    expect(map.channels).toBe(3);
    expect(Array.from(map.data)).toEqual([0, 0, 0, 1, 1, 1]);
  });
});

describe('cheap preprocessors', () => {
  const rgb = {
    width: 3,
    height: 1,
    channels: 3 as const,
    data: Uint8Array.of(200, 126, 250, 127, 127, 127, 0, 255, 255),
  };

  it('scribble marks pixels whose darkest channel is below 127', () => {
    expect(Array.from(scribble(rgb).data)).toEqual([255, 0, 255]);
  });

  it('invert and lineart turn dark lines on white into white on black', () => {
    expect(Array.from(invert(rgb).data)).toEqual([55, 129, 5, 128, 128, 128, 255, 0, 0]);
    const lines = lineart({ width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 255) });
    expect(Array.from(toControlMap(lines).data)).toEqual([1, 1, 1, 0, 0, 0]);
  });

  it('preprocess returns 3-channel maps; none only applies HWC3', () => {
    const photo = {
      width: 8,
      height: 8,
      channels: 3 as const,
      data: Uint8Array.from({ length: 192 }, (_, i) => (i % 24 < 12 ? 0 : 255)),
    };
    const edges = canny(photo, { low: 100, high: 200 }).data;
    const map = preprocess('canny', photo).data;
    expect(edges.some((v) => v === 255)).toBe(true);
    expect(Array.from(map.filter((_, i) => i % 3 === 1))).toEqual(Array.from(edges));
    expect(preprocess('none', photo).data).toBe(photo.data);
    expect(() => preprocess('hed' as 'none', photo)).toThrow(ImageError);
  });
});
