import { describe, expect, it } from 'vitest';
import { DEFAULT_ADDED_PROMPT, DEFAULT_NEGATIVE_PROMPT } from './defaults.ts';
import { detailsFromZodError } from './errors.ts';
import { type GenerationRequestInput, GenerationRequestSchema, SCHEDULERS } from './generation-request.ts';

const PNG_DATA_URL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const minimal = (): GenerationRequestInput => ({
  prompt: 'a house',
  controls: [{ type: 'canny', image: PNG_DATA_URL }],
});

/** Parses and returns the envelope details (path -> message) of a rejected request. */
function rejection(input: unknown) {
  const result = GenerationRequestSchema.safeParse(input);
  expect(result.success).toBe(false);
  return detailsFromZodError(result.error!);
}

function paths(input: unknown): string[] {
  return rejection(input).map((d) => d.path);
}

describe('GenerationRequest defaults', () => {
  it('fills the original ControlNet 1.0 app defaults', () => {
    const request = GenerationRequestSchema.parse(minimal());
    expect(request).toMatchObject({
      negative_prompt: DEFAULT_NEGATIVE_PROMPT,
      added_prompt: DEFAULT_ADDED_PROMPT,
      image_resolution: 512,
      steps: 20,
      guidance_scale: 9,
      eta: 0,
      num_images: 1,
      guess_mode: false,
      scheduler: 'ddim',
      output_format: 'png',
    });
    expect(request.seed).toBeUndefined();
    expect(request.width).toBeUndefined();
    expect(request.controls[0]).toEqual({
      type: 'canny',
      preprocessor: 'canny',
      pixel_perfect: false,
      image: PNG_DATA_URL,
      preprocess: true,
      params: { low: 100, high: 200 },
      strength: 1,
      start: 0,
      end: 1,
    });
  });

  it('defaults preprocess per type: true for cheap preprocessors, false for network and identity types', () => {
    const request = GenerationRequestSchema.parse({
      prompt: 'x',
      controls: [
        { type: 'scribble', image: PNG_DATA_URL },
        { type: 'depth', image: PNG_DATA_URL },
        { type: 'tile', image: PNG_DATA_URL },
        { type: 'depth', image: PNG_DATA_URL, preprocess: true },
      ],
    });
    expect(request.controls.map((c) => c.preprocess)).toEqual([true, false, false, true]);
    expect(request.controls[0]!.params).toEqual({ threshold: 127 });
    expect(request.controls[1]!.params).toEqual({ detect_resolution: 512 });
  });

  it('keeps explicit values, sizes on the 64 grid and a uint32 seed', () => {
    const request = GenerationRequestSchema.parse({
      ...minimal(),
      width: 768,
      height: 512,
      seed: 0xffffffff,
      steps: 1,
      guidance_scale: 0,
      num_images: 4,
      output_format: 'webp',
      webhook: 'https://example.com/hook',
      metadata: { user: '42' },
    });
    expect(request).toMatchObject({ width: 768, height: 512, seed: 4294967295, num_images: 4 });
  });

  it('accepts every image form: data URL, bare base64, https URL, attachment', () => {
    for (const image of [
      PNG_DATA_URL,
      PNG_DATA_URL.split(',')[1]!,
      'https://example.com/a.png',
      'attachment:file0',
    ]) {
      expect(
        GenerationRequestSchema.safeParse({ prompt: 'x', controls: [{ type: 'canny', image }] }).success,
      ).toBe(true);
    }
  });
});

describe('GenerationRequest rules name the field at fault', () => {
  it('requires a non-empty prompt of at most 2000 characters', () => {
    expect(paths({ controls: minimal().controls })).toEqual(['prompt']);
    expect(paths({ ...minimal(), prompt: '   ' })).toEqual(['prompt']);
    expect(paths({ ...minimal(), prompt: 'a'.repeat(2001) })).toEqual(['prompt']);
    expect(GenerationRequestSchema.safeParse({ ...minimal(), prompt: 'a'.repeat(2000) }).success).toBe(true);
  });

  it('takes 1..4 control units and refuses a fifth instead of capping silently', () => {
    expect(paths({ ...minimal(), controls: [] })).toEqual(['controls']);
    const unit = minimal().controls[0]!;
    const five = rejection({ ...minimal(), controls: [unit, unit, unit, unit, unit] });
    expect(five).toEqual([{ path: 'controls', message: 'at most 4 control units are supported' }]);
    expect(
      GenerationRequestSchema.safeParse({ ...minimal(), controls: [unit, unit, unit, unit] }).success,
    ).toBe(true);
  });

  it('checks control types, images and per-type params', () => {
    expect(paths({ ...minimal(), controls: [{ type: 'sketchy', image: PNG_DATA_URL }] })).toEqual([
      'controls.0.type',
    ]);
    expect(paths({ ...minimal(), controls: [{ type: 'canny', image: 'not an image' }] })).toEqual([
      'controls.0.image',
    ]);
    expect(
      paths({ ...minimal(), controls: [{ type: 'canny', image: 'data:image/gif;base64,R0lGOD' }] }),
    ).toEqual(['controls.0.image']);
    const canny = (params: unknown) => ({
      ...minimal(),
      controls: [{ type: 'canny', image: PNG_DATA_URL, params }],
    });
    expect(paths(canny({ low: 0, high: 200 }))).toEqual(['controls.0.params.low']);
    expect(paths(canny({ low: 100, high: 256 }))).toEqual(['controls.0.params.high']);
    expect(paths(canny({ low: 201, high: 200 }))).toEqual(['controls.0.params.low']);
    expect(paths(canny({ low: 100.5, high: 200 }))).toEqual(['controls.0.params.low']);
    expect(GenerationRequestSchema.safeParse(canny({ low: 200, high: 200 })).success).toBe(true);
    // params of another type are refused, not ignored
    expect(paths(canny({ threshold: 10 }))).toEqual(['controls.0.params']);
  });

  it('requires a mask for inpaint units only', () => {
    expect(paths({ ...minimal(), controls: [{ type: 'inpaint', image: PNG_DATA_URL }] })).toEqual([
      'controls.0.mask',
    ]);
    expect(
      GenerationRequestSchema.safeParse({
        ...minimal(),
        controls: [{ type: 'inpaint', image: PNG_DATA_URL, mask: PNG_DATA_URL }],
      }).success,
    ).toBe(true);
    expect(
      paths({ ...minimal(), controls: [{ type: 'canny', image: PNG_DATA_URL, mask: PNG_DATA_URL }] }),
    ).toEqual(['controls.0']);
  });

  it('bounds strength to 0..2 and start/end to 0..1 with start < end', () => {
    const unit = (extra: object) => ({
      ...minimal(),
      controls: [{ type: 'canny', image: PNG_DATA_URL, ...extra }],
    });
    expect(paths(unit({ strength: 2.01 }))).toEqual(['controls.0.strength']);
    expect(paths(unit({ strength: -0.1 }))).toEqual(['controls.0.strength']);
    expect(paths(unit({ start: -0.1 }))).toEqual(['controls.0.start']);
    expect(paths(unit({ end: 1.5 }))).toEqual(['controls.0.end']);
    expect(paths(unit({ start: 0.5, end: 0.5 }))).toEqual(['controls.0.end']);
    expect(paths(unit({ start: 0.6, end: 0.4 }))).toEqual(['controls.0.end']);
    expect(GenerationRequestSchema.safeParse(unit({ strength: 2, start: 0.2, end: 0.8 })).success).toBe(true);
  });

  it('rejects sizes off the 64 grid with the nearest valid sizes', () => {
    const [detail] = rejection({ ...minimal(), width: 500, height: 512 });
    expect(detail!.path).toBe('width');
    expect(detail!.message).toContain('not a multiple of 64');
    expect(detail!.suggestions).toEqual(['512x512', '448x512']);
    expect(detail!.message).toContain('512x512');
  });

  it('rejects sides outside 256..1024 and sizes over the pixel cap', () => {
    expect(rejection({ ...minimal(), width: 192, height: 512 })[0]).toMatchObject({
      path: 'width',
      suggestions: ['256x512'],
    });
    expect(paths({ ...minimal(), width: 512, height: 1088 })).toEqual(['height']);
    const [cap] = rejection({ ...minimal(), width: 1024, height: 1024 });
    expect(cap!.path).toBe('width');
    expect(cap!.message).toContain('over the cap');
    expect(cap!.suggestions).toEqual(['1024x768', '768x1024', '832x832']);
    expect(GenerationRequestSchema.safeParse({ ...minimal(), width: 1024, height: 768 }).success).toBe(true);
  });

  it('needs width and height together', () => {
    expect(paths({ ...minimal(), width: 512 })).toEqual(['height']);
    expect(paths({ ...minimal(), height: 512 })).toEqual(['width']);
  });

  it('checks image_resolution, steps, guidance, eta, seed, num_images, scheduler and format', () => {
    expect(paths({ ...minimal(), image_resolution: 500 })).toEqual(['image_resolution']);
    expect(paths({ ...minimal(), steps: 0 })).toEqual(['steps']);
    expect(paths({ ...minimal(), steps: 101 })).toEqual(['steps']);
    expect(paths({ ...minimal(), steps: 20.5 })).toEqual(['steps']);
    expect(paths({ ...minimal(), guidance_scale: 30.5 })).toEqual(['guidance_scale']);
    expect(paths({ ...minimal(), eta: 1.1 })).toEqual(['eta']);
    expect(paths({ ...minimal(), seed: -1 })).toEqual(['seed']);
    expect(paths({ ...minimal(), seed: 2 ** 32 })).toEqual(['seed']);
    expect(paths({ ...minimal(), seed: 1.5 })).toEqual(['seed']);
    expect(paths({ ...minimal(), num_images: 5 })).toEqual(['num_images']);
    expect(paths({ ...minimal(), scheduler: 'euler' })).toEqual(['scheduler']);
    expect(paths({ ...minimal(), output_format: 'gif' })).toEqual(['output_format']);
  });

  it('takes every sampler by name, ddim by default, and caps lcm at its 50 distillation steps', () => {
    expect(GenerationRequestSchema.parse(minimal()).scheduler).toBe('ddim');
    for (const scheduler of SCHEDULERS) {
      expect(GenerationRequestSchema.parse({ ...minimal(), scheduler, steps: 8 }).scheduler).toBe(scheduler);
    }
    expect(paths({ ...minimal(), scheduler: 'lcm', steps: 51 })).toEqual(['steps']);
    expect(GenerationRequestSchema.safeParse({ ...minimal(), scheduler: 'unipc', steps: 51 }).success).toBe(
      true,
    );
  });

  it('checks webhook URLs and metadata', () => {
    expect(paths({ ...minimal(), webhook: 'ftp://example.com/x' })).toEqual(['webhook']);
    expect(paths({ ...minimal(), webhook: 'not a url' })).toEqual(['webhook']);
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    expect(paths({ ...minimal(), metadata: many })).toEqual(['metadata']);
    expect(paths({ ...minimal(), metadata: { k: 'v'.repeat(501) } })).toEqual(['metadata.k']);
  });

  it('refuses unknown fields rather than ignoring them', () => {
    expect(paths({ ...minimal(), ddim_steps: 20 })).toEqual(['']);
    expect(rejection({ ...minimal(), ddim_steps: 20 })[0]!.message).toContain('ddim_steps');
  });
});
