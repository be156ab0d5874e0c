import { describe, expect, it } from 'vitest';
import { generationCost } from './pricing.ts';

describe('generationCost', () => {
  it('charges steps x megapixels x images, +50% per extra control unit', () => {
    const base = { width: 512, height: 512, steps: 20, num_images: 1, control_units: 1 };
    expect(generationCost(base)).toBe(20);
    expect(generationCost({ ...base, num_images: 4 })).toBe(80);
    expect(generationCost({ ...base, width: 1024 })).toBe(40);
    expect(generationCost({ ...base, control_units: 3 })).toBe(40);
    expect(generationCost({ ...base, width: 256, height: 256, steps: 1 })).toBe(1);
  });
});
