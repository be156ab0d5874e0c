import { describe, expect, it } from 'vitest';
import { gaussianNoise, philox4x32 } from './noise.ts';

describe('seeded noise', () => {
  it('matches the Random123 known-answer vectors of Philox4x32-10', () => {
    expect([...philox4x32([0, 0, 0, 0], [0, 0])]).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    const max = 0xffffffff;
    expect([...philox4x32([max, max, max, max], [max, max])]).toEqual([
      0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd,
    ]);
    expect([
      ...philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
    ]).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });

  it('is deterministic per seed and stream and standard normal', () => {
    const a = gaussianNoise(42, 0, 100_001);
    expect(gaussianNoise(42, 0, 100_001)).toEqual(a);
    expect(gaussianNoise(43, 0, 10)).not.toEqual(a.slice(0, 10));
    expect(gaussianNoise(42, 1, 10)).not.toEqual(a.slice(0, 10));
    expect(gaussianNoise(42, 0, 7)).toEqual(a.slice(0, 7));
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    expect(gaussianNoise(2 ** 40 + 5, 3, 4).every(Number.isFinite)).toBe(true);
  });
});
