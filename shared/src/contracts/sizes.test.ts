import { describe, expect, it } from 'vitest';
import {
  deriveOutputSize,
  fitToLimits,
  isValidSize,
  MAX_PIXELS,
  nearestValidSizes,
  roundHalfEven,
} from './sizes.ts';

describe('roundHalfEven (numpy np.round)', () => {
  it('rounds halves to the even neighbour like numpy', () => {
    // np.round([0.5, 1.5, 2.5, 3.5, -0.5, 2.4, 2.6]) == [0, 2, 2, 4, -0, 2, 3]
    expect([0.5, 1.5, 2.5, 3.5, -0.5, 2.4, 2.6].map((x) => roundHalfEven(x) + 0)).toEqual([
      0, 2, 2, 4, 0, 2, 3,
    ]);
  });
});

describe('deriveOutputSize (the original resize_image)', () => {
  it('matches resize_image for common photo sizes', () => {
    // Computed with the original formula: k = 512 / min(H, W); side = int(np.round(side * k / 64)) * 64
    expect(deriveOutputSize({ width: 640, height: 480 })).toMatchObject({
      width: 704,
      height: 512,
      adjusted: false,
    });
    expect(deriveOutputSize({ width: 480, height: 640 })).toMatchObject({ width: 512, height: 704 });
    expect(deriveOutputSize({ width: 1920, height: 1080 })).toMatchObject({ width: 896, height: 512 });
    expect(deriveOutputSize({ width: 512, height: 512 })).toMatchObject({ width: 512, height: 512 });
    expect(deriveOutputSize({ width: 100, height: 100 }, 768)).toMatchObject({ width: 768, height: 768 });
  });

  it('rounds half to even exactly where numpy does', () => {
    // 512 * 704 / 512 = 704 -> 11 exactly; 544 / 64 = 8.5 -> 8 (even), 608 / 64 = 9.5 -> 10 (even)
    expect(deriveOutputSize({ width: 544, height: 512 })).toMatchObject({ width: 512, height: 512 });
    expect(deriveOutputSize({ width: 608, height: 512 })).toMatchObject({ width: 640, height: 512 });
  });

  it('fits sizes that break the caps, keeps the aspect and says so', () => {
    const wide = deriveOutputSize({ width: 3000, height: 1000 });
    expect(wide.original).toEqual({ width: 1536, height: 512 });
    expect(wide.adjusted).toBe(true);
    expect(isValidSize(wide)).toBe(true);
    expect(wide).toMatchObject({ width: 1024, height: 320 });
    const big = deriveOutputSize({ width: 1000, height: 1000 }, 1024);
    expect(big.adjusted).toBe(true);
    expect(big.width * big.height).toBeLessThanOrEqual(MAX_PIXELS);
    expect(big.width).toBe(big.height);
  });
});

describe('nearestValidSizes', () => {
  it('offers valid sizes only, closest first', () => {
    for (const size of [
      { width: 500, height: 500 },
      { width: 10, height: 5000 },
      { width: 1024, height: 1024 },
      { width: 1023.5, height: 333 },
    ]) {
      const suggestions = nearestValidSizes(size);
      expect(suggestions.length).toBeGreaterThan(0);
      for (const s of suggestions) expect(isValidSize(s)).toBe(true);
    }
    expect(nearestValidSizes({ width: 500, height: 500 })[0]).toEqual({ width: 512, height: 512 });
  });

  it('fitToLimits never exceeds the caps, even for extreme aspect ratios', () => {
    for (const size of [
      { width: 10000, height: 256 },
      { width: 256, height: 10000 },
      { width: 4096, height: 4096 },
    ]) {
      expect(isValidSize(fitToLimits(size))).toBe(true);
    }
  });
});
