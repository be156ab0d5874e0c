import { describe, expect, it } from 'vitest';
import { GenerationRequestSchema } from './generation-request.ts';
import { PreprocessRequestSchema } from './preprocess.ts';
import {
  CONTROL_TYPE_PREPROCESSORS,
  PREPROCESSOR_NAMES,
  PREPROCESSORS,
  pixelPerfectResolution,
} from './preprocessors.ts';

const PNG = 'data:image/png;base64,iVBORw0KGgo=';

describe('preprocessor catalogue', () => {
  it('lists every preprocessor under the control type its map is made for', () => {
    for (const name of PREPROCESSOR_NAMES) {
      expect(CONTROL_TYPE_PREPROCESSORS[PREPROCESSORS[name].controlType], name).toContain(name);
      expect(PREPROCESSORS[name].weights.length > 0, name).toBe(PREPROCESSORS[name].stage === 'worker');
    }
  });

  it('pixel perfect is round(max(outH/H, outW/W) * min(H, W)) with numpy rounding, clamped', () => {
    expect(pixelPerfectResolution({ width: 1024, height: 768 }, { width: 640, height: 512 })).toBe(512);
    // 0.5 scale of 1001 -> 500.5 rounds to even (500), not up.
    expect(pixelPerfectResolution({ width: 1001, height: 1001 }, { width: 500.5, height: 500.5 })).toBe(500);
    expect(pixelPerfectResolution({ width: 8000, height: 8000 }, { width: 4000, height: 4000 })).toBe(2048);
  });
});

describe('units and /v1/preprocess name their preprocessor', () => {
  it('a unit gets its type default and that preprocessor defaults; a named one its own', () => {
    const request = GenerationRequestSchema.parse({
      prompt: 'x',
      controls: [
        { type: 'depth', image: PNG, preprocess: true },
        { type: 'mlsd', image: PNG, preprocess: true, params: { value_threshold: 0.5 } },
        { type: 'lineart', image: PNG, preprocessor: 'lineart_coarse', pixel_perfect: true },
      ],
    });
    expect(request.controls.map((u) => [u.preprocessor, u.params])).toEqual([
      ['depth_midas', { detect_resolution: 512 }],
      ['mlsd', { detect_resolution: 512, value_threshold: 0.5, distance_threshold: 0.1 }],
      ['lineart_coarse', { detect_resolution: 512 }],
    ]);
    expect(request.controls[2]!.pixel_perfect).toBe(true);
  });

  it('refuses a preprocessor of another head and params the named preprocessor does not take, on the field', () => {
    const wrongHead = GenerationRequestSchema.safeParse({
      prompt: 'x',
      controls: [{ type: 'depth', image: PNG, preprocessor: 'openpose' }],
    });
    expect(wrongHead.success).toBe(false);
    expect(wrongHead.error?.issues[0]?.path).toEqual(['controls', 0, 'preprocessor']);
    const foreign = GenerationRequestSchema.safeParse({
      prompt: 'x',
      controls: [{ type: 'lineart', image: PNG, preprocessor: 'invert', params: { detect_resolution: 256 } }],
    });
    expect(foreign.success).toBe(false);
    expect(foreign.error?.issues[0]?.path).toEqual(['controls', 0, 'params']);
    const range = GenerationRequestSchema.safeParse({
      prompt: 'x',
      controls: [{ type: 'mlsd', image: PNG, params: { distance_threshold: 50 } }],
    });
    expect(range.error?.issues[0]?.path).toEqual(['controls', 0, 'params', 'distance_threshold']);
  });

  it('/v1/preprocess resolves a type to its default, needs a mask for inpaint and checks params', () => {
    expect(PreprocessRequestSchema.parse({ type: 'openpose', image: PNG })).toMatchObject({
      preprocessor: 'openpose',
      type: 'openpose',
      params: { detect_resolution: 512 },
    });
    expect(PreprocessRequestSchema.parse({ preprocessor: 'softedge_pidisafe', image: PNG }).type).toBe(
      'softedge',
    );
    const noMask = PreprocessRequestSchema.safeParse({ preprocessor: 'inpaint', image: PNG });
    expect(noMask.error?.issues[0]?.path).toEqual(['mask']);
    const none = PreprocessRequestSchema.safeParse({ image: PNG });
    expect(none.error?.issues[0]?.path).toEqual(['preprocessor']);
    const ip2p = PreprocessRequestSchema.safeParse({ type: 'ip2p', image: PNG });
    expect(ip2p.error?.issues[0]?.path).toEqual(['type']);
    const bad = PreprocessRequestSchema.safeParse({
      preprocessor: 'canny',
      image: PNG,
      params: { low: 300 },
    });
    expect(bad.error?.issues[0]?.path).toEqual(['params', 'low']);
  });
});
