import { describe, expect, it } from 'vitest';
import { TILE_LATENT_OVERLAP, TILE_LATENT_SIZE, tilingFromEnv } from './engine.ts';

describe('CONTOUR_TILE_LATENT_PIXELS', () => {
  it('is off by default and sets the latent cap with 512px tiles when given', () => {
    expect(tilingFromEnv({})).toBeUndefined();
    expect(tilingFromEnv({ CONTOUR_TILE_LATENT_PIXELS: '8192' })).toEqual({
      maxLatentPixels: 8192,
      size: TILE_LATENT_SIZE,
      overlap: TILE_LATENT_OVERLAP,
    });
    expect(() => tilingFromEnv({ CONTOUR_TILE_LATENT_PIXELS: 'lots' })).toThrow(/positive integer/);
  });
});
