// cvResize against cv2.resize: every case in shared/test/fixtures/cv-resize was written by make_fixtures.py
// there (Debian python3-opencv 4.6, seeded random images); see its README.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CvInterpolation, cvResize, cvResizeBy } from './cv-resize.ts';

interface Case {
  interpolation: CvInterpolation;
  dtype: 'uint8' | 'float32' | 'float64';
  channels: number;
  src: [number, number];
  dst: [number, number];
  input: number;
  output: number;
  fx?: number;
  fy?: number;
}

const dir = new URL('../../test/fixtures/cv-resize/', import.meta.url);
const manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8')) as {
  cases: Case[];
  by_scale: Case[];
};
const bytes = readFileSync(new URL('cases.bin', dir));
const blob = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);

const ARRAYS = { uint8: Uint8Array, float32: Float32Array, float64: Float64Array };
const view = (dtype: Case['dtype'], offset: number, length: number) =>
  new ARRAYS[dtype](blob, offset, length);

type Pixels = Uint8Array | Float32Array | Float64Array;

/** Indices where `got` and `want` differ (bitwise for floats, so -0/+0 and NaN payloads count). */
function mismatches(got: Pixels, want: Pixels): number[] {
  const a = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
  const b = new Uint8Array(want.buffer, want.byteOffset, want.byteLength);
  const size = got.BYTES_PER_ELEMENT;
  const bad: number[] = [];
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i] && bad.at(-1) !== Math.floor(i / size)) bad.push(Math.floor(i / size));
  return bad;
}

describe('cvResize matches cv2.resize bit for bit', () => {
  it('has cases for every interpolation, dtype and channel count', () => {
    const kinds = new Set(manifest.cases.map((c) => `${c.interpolation} ${c.dtype} ${c.channels}`));
    // uint8 and float32 with 1..4 channels; float64 with 1 and 3.
    expect(kinds.size).toBe(5 * 2 * 4 + 5 * 2);
    expect(manifest.cases.length).toBeGreaterThanOrEqual(400);
  });

  for (const interpolation of ['nearest', 'linear', 'cubic', 'area', 'lanczos4'] as const) {
    for (const dtype of ['uint8', 'float32', 'float64'] as const) {
      it(`${interpolation} ${dtype}`, () => {
        const failures: string[] = [];
        for (const c of manifest.cases) {
          if (c.interpolation !== interpolation || c.dtype !== dtype) continue;
          const [sw, sh] = c.src;
          const [dw, dh] = c.dst;
          const input = view(dtype, c.input, sw * sh * c.channels);
          const want = view(dtype, c.output, dw * dh * c.channels);
          const img = { width: sw, height: sh, channels: c.channels, data: input.slice() };
          const got = cvResize(img, dw, dh, interpolation);
          expect([got.width, got.height, got.channels]).toEqual([dw, dh, c.channels]);
          expect(got.data).toBeInstanceOf(ARRAYS[dtype]);
          const bad = mismatches(got.data, want);
          if (bad.length > 0)
            failures.push(`${sw}x${sh}x${c.channels} -> ${dw}x${dh}: ${bad.length} samples`);
        }
        expect(failures).toEqual([]);
      });
    }
  }
});

describe('cvResizeBy matches cv2.resize(img, None, fx, fy)', () => {
  it('has scale cases for every interpolation and dtype', () => {
    const kinds = new Set(manifest.by_scale.map((c) => `${c.interpolation} ${c.dtype}`));
    expect(kinds.size).toBe(5 * 2);
  });

  for (const interpolation of ['nearest', 'linear', 'cubic', 'area', 'lanczos4'] as const) {
    it(`${interpolation}, uint8 and float32, up/down/mixed scales, blocks cut by the edge`, () => {
      const failures: string[] = [];
      for (const c of manifest.by_scale) {
        if (c.interpolation !== interpolation) continue;
        const [sw, sh] = c.src;
        const [dw, dh] = c.dst;
        const input = view(c.dtype, c.input, sw * sh * c.channels);
        const want = view(c.dtype, c.output, dw * dh * c.channels);
        const img = { width: sw, height: sh, channels: c.channels, data: input.slice() };
        const got = cvResizeBy(img, c.fx as number, c.fy as number, interpolation);
        const bad = got.width === dw && got.height === dh ? mismatches(got.data, want) : [-1];
        if (bad.length > 0)
          failures.push(`${c.dtype} ${sw}x${sh}x${c.channels} * ${c.fx},${c.fy}: ${bad.length}`);
      }
      expect(failures).toEqual([]);
    });
  }

  it('samples with fx itself, not the ratio of the rounded sizes', () => {
    const c = manifest.by_scale.find(
      (k) => k.interpolation === 'linear' && k.fx === 0.3 && k.dtype === 'uint8',
    );
    expect(c).toBeDefined();
    const { src, channels, input, dst } = c as Case;
    const img = {
      width: src[0],
      height: src[1],
      channels,
      data: view('uint8', input, src[0] * src[1] * channels),
    };
    const bySize = cvResize(img, dst[0], dst[1], 'linear').data;
    const byScale = cvResizeBy(img, 0.3, c?.fy as number, 'linear').data;
    expect(mismatches(bySize, byScale).length).toBeGreaterThan(0);
  });
});

describe('cvResize', () => {
  const img = { width: 4, height: 2, channels: 1, data: new Uint8Array([0, 10, 20, 30, 40, 50, 60, 70]) };

  it('returns a copy for the same size and leaves the input alone', () => {
    const out = cvResize(img, 4, 2, 'cubic');
    expect(out.data).toEqual(img.data);
    expect(out.data).not.toBe(img.data);
  });

  it('rounds 2x2 area averages half up on uint8, as OpenCV does', () => {
    // (0 + 10 + 40 + 50 + 2) >> 2 = 25, (20 + 30 + 60 + 70 + 2) >> 2 = 45
    expect(Array.from(cvResize(img, 2, 1, 'area').data)).toEqual([25, 45]);
    // INTER_LINEAR at exactly half size runs as INTER_AREA
    expect(Array.from(cvResize(img, 2, 1, 'linear').data)).toEqual([25, 45]);
  });

  it('rejects bad arguments', () => {
    expect(() => cvResize(img, 0, 2, 'linear')).toThrow(/cannot resize/);
    expect(() => cvResize({ ...img, channels: 5 }, 2, 2, 'linear')).toThrow(/channels/);
    expect(() => cvResize({ ...img, data: new Uint8Array(3) }, 2, 2, 'linear')).toThrow(/data must be/);
    expect(() => cvResize(img, 2, 2, 'bogus' as CvInterpolation)).toThrow(/unknown interpolation/);
  });
});
