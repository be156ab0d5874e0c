import { describe, expect, it } from 'vitest';
import { detailsFromZodError } from './errors.ts';
import { GenerationRequestSchema } from './generation-request.ts';
import {
  DEFAULT_IMG2IMG_STRENGTH,
  DEFAULT_INPAINT_STRENGTH,
  DEFAULT_UPSCALE_STRENGTH,
  denoisingSteps,
  effectiveStrength,
  upscaledSize,
} from './image-modes.ts';
import { generationCost } from './pricing.ts';

const PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const base = { prompt: 'a house', controls: [{ type: 'canny', image: PNG }] };

function details(input: unknown) {
  const result = GenerationRequestSchema.safeParse(input);
  expect(result.success).toBe(false);
  return detailsFromZodError(result.error!);
}

describe('image-mode request fields', () => {
  it('accepts img2img and inpaint requests and resolves the strength per mode', () => {
    const img2img = GenerationRequestSchema.parse({ ...base, init_image: PNG });
    expect(effectiveStrength(img2img)).toBe(DEFAULT_IMG2IMG_STRENGTH);
    const inpaint = GenerationRequestSchema.parse({ ...base, init_image: PNG, mask: PNG, mask_blur: 2 });
    expect(effectiveStrength(inpaint)).toBe(DEFAULT_INPAINT_STRENGTH);
    expect(inpaint.mask_blur).toBe(2);
    expect(
      effectiveStrength(GenerationRequestSchema.parse({ ...base, init_image: PNG, strength: 0.3 })),
    ).toBe(0.3);
    expect(effectiveStrength(GenerationRequestSchema.parse(base))).toBeUndefined();
  });

  it('names the field at fault', () => {
    expect(details({ ...base, mask: PNG }).map((d) => d.path)).toEqual(['mask']);
    expect(details({ ...base, strength: 0.5 })).toEqual([
      { path: 'strength', message: 'strength needs init_image' },
    ]);
    expect(details({ ...base, init_image: PNG, mask_blur: 3 }).map((d) => d.path)).toEqual(['mask_blur']);
    expect(details({ ...base, init_image: PNG, strength: 0 }).map((d) => d.path)).toEqual(['strength']);
    expect(details({ ...base, init_image: PNG, strength: 1.5 }).map((d) => d.path)).toEqual(['strength']);
    expect(details({ ...base, init_image: 'not an image' }).map((d) => d.path)).toEqual(['init_image']);
    expect(details({ ...base, init_image: PNG, mask: PNG, mask_blur: 65 }).map((d) => d.path)).toEqual([
      'mask_blur',
    ]);
  });

  it('prices the steps that run plus the encoder pass', () => {
    expect(denoisingSteps(20, 0.5)).toBe(10);
    expect(denoisingSteps(20, 0.01)).toBe(1);
    expect(denoisingSteps(20, undefined)).toBe(20);
    const work = { width: 512, height: 512, steps: 20, num_images: 1, control_units: 1 };
    expect(generationCost(work)).toBe(20);
    expect(generationCost({ ...work, strength: 0.5 })).toBe(11);
    expect(generationCost({ ...work, strength: 1 })).toBe(21);
  });

  it('upscale: needs init_image, excludes width/height, sizes to the 64 grid within the caps', () => {
    const upscale = GenerationRequestSchema.parse({ ...base, init_image: PNG, upscale: 2 });
    expect(effectiveStrength(upscale)).toBe(DEFAULT_UPSCALE_STRENGTH);
    expect(details({ ...base, upscale: 2 }).map((d) => d.path)).toEqual(['upscale']);
    expect(
      details({ ...base, init_image: PNG, upscale: 2, width: 512, height: 512 }).map((d) => d.path),
    ).toEqual(['upscale']);
    expect(details({ ...base, init_image: PNG, upscale: 1 }).map((d) => d.path)).toEqual(['upscale']);
    expect(details({ ...base, init_image: PNG, upscale: 5 }).map((d) => d.path)).toEqual(['upscale']);
    expect(upscaledSize({ width: 256, height: 192 }, 2)).toEqual({
      size: { width: 512, height: 384 },
      problem: null,
    });
    // 300 * 1.5 = 450 -> 448 (7 x 64); 200 * 1.5 = 300 -> 320
    expect(upscaledSize({ width: 300, height: 200 }, 1.5).size).toEqual({ width: 448, height: 320 });
    expect(upscaledSize({ width: 512, height: 512 }, 2).problem).toMatch(/over the cap/);
  });
});
