import { describe, expect, it } from 'vitest';
import { nativeSamplingSize, resizeControlMapMax } from './native-resolution.ts';

describe('nativeSamplingSize', () => {
  it('scales the shorter side to the native resolution and keeps the aspect ratio in multiples', () => {
    expect(nativeSamplingSize({ width: 512, height: 512 }, 64, 16)).toEqual({ width: 64, height: 64 });
    expect(nativeSamplingSize({ width: 512, height: 768 }, 64, 16)).toEqual({ width: 64, height: 96 });
    expect(nativeSamplingSize({ width: 1024, height: 256 }, 64, 16)).toEqual({ width: 256, height: 64 });
    // 64 * 700 / 512 = 87.5: the nearest multiple of 16 is 80.
    expect(nativeSamplingSize({ width: 700, height: 512 }, 64, 16)).toEqual({ width: 80, height: 64 });
  });
});

describe('resizeControlMapMax', () => {
  it('keeps a 1-pixel line at full strength when shrinking 8x', () => {
    const width = 64;
    const height = 64;
    const data = new Float32Array(width * height * 3);
    // A vertical white line at x = 13 and one lit pixel at (40, 50).
    for (let y = 0; y < height; y++) data.fill(1, (y * width + 13) * 3, (y * width + 14) * 3);
    data.fill(0.5, (50 * width + 40) * 3, (50 * width + 41) * 3);
    const small = resizeControlMapMax({ width, height, channels: 3, data }, 8, 8);
    const at = (x: number, y: number) => small.data[(y * 8 + x) * 3]!;
    for (let y = 0; y < 8; y++) {
      expect(at(1, y)).toBe(1); // x 13 lies in the block 8..15
      expect(at(0, y)).toBe(0);
      expect(at(2, y)).toBe(0);
    }
    expect(at(5, 6)).toBe(0.5);
    expect(small.data.reduce((a, b) => a + b, 0)).toBeCloseTo(8 * 3 + 0.5 * 3, 5);
  });

  it('covers every source pixel for sizes that do not divide evenly', () => {
    const data = new Float32Array(10 * 7 * 3);
    data.fill(1, (6 * 10 + 9) * 3, (6 * 10 + 10) * 3); // bottom-right corner
    const small = resizeControlMapMax({ width: 10, height: 7, channels: 3, data }, 3, 3);
    expect(small.data[(2 * 3 + 2) * 3]).toBe(1);
    expect(small.data.slice(0, (2 * 3 + 2) * 3).every((v) => v === 0)).toBe(true);
  });
});
