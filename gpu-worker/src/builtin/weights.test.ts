import { describe, expect, it } from 'vitest';
import { builtinParameter, ldmParameterRole } from './weights.ts';

describe('built-in weights', () => {
  it('are a pure function of component, name and shape', () => {
    const a = builtinParameter('unet', 'input_blocks.0.0.weight', [32, 4, 3, 3], 'weight');
    expect(builtinParameter('unet', 'input_blocks.0.0.weight', [32, 4, 3, 3], 'weight')).toEqual(a);
    expect(
      builtinParameter('controlnet-canny', 'input_blocks.0.0.weight', [32, 4, 3, 3], 'weight'),
    ).not.toEqual(a);
    // 1/sqrt(fan_in) scaling: fan_in = 4 * 3 * 3.
    const rms = Math.sqrt(a.reduce((s, v) => s + v * v, 0) / a.length);
    expect(rms).toBeGreaterThan(0.8 / 6);
    expect(rms).toBeLessThan(1.2 / 6);
  });

  it('initialise norms to identity and biases to zero', () => {
    expect(ldmParameterRole('out.0.weight', [32])).toBe('norm-scale');
    expect(ldmParameterRole('out.0.bias', [32])).toBe('bias');
    expect(ldmParameterRole('out.2.weight', [4, 32, 3, 3])).toBe('weight');
    expect([...builtinParameter('unet', 'out.0.weight', [4], 'norm-scale')]).toEqual([1, 1, 1, 1]);
    expect([...builtinParameter('unet', 'out.0.bias', [4], 'bias')]).toEqual([0, 0, 0, 0]);
  });
});
