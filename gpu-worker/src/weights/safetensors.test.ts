import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, float32ToFloat16Bits, SafetensorsError, SafetensorsFile } from './safetensors.ts';

/** Builds a file from a raw JSON header and data bytes, so malformed files can be tested. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof SafetensorsError ? error.code : `not a SafetensorsError: ${String(error)}`;
  }
  return undefined;
}

describe('SafetensorsFile', () => {
  it('round-trips F32, F16 and I32 tensors with metadata', async () => {
    const bytes = encodeSafetensors(
      {
        a: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2, 3.5, 1e-8, 0, 7]) },
        h: { dtype: 'F16', shape: [4], data: new Float32Array([1, -0.33333, 65504, 6e-8]) },
        i: { dtype: 'I32', shape: [3], data: new Int32Array([5, -1, 2 ** 30]) },
      },
      { config: '{"x":1}' },
    );
    const file = SafetensorsFile.fromBytes(bytes);
    expect(file.metadata).toEqual({ config: '{"x":1}' });
    expect([...file.tensors.keys()]).toEqual(['a', 'h', 'i']);
    expect(file.tensors.get('h')).toMatchObject({ dtype: 'F16', shape: [4] });
    expect([...(await file.readFloat32('a'))]).toEqual([1, -2, 3.5, Math.fround(1e-8), 0, 7]);
    // -0.33333 rounds to the nearest half 0x3555 = -0.333251953125; 6e-8 to the smallest subnormal 2^-24.
    expect([...(await file.readFloat32('h'))]).toEqual([1, -0.333251953125, 65504, 2 ** -24]);
    expect([...(await file.readInt32('i'))]).toEqual([5, -1, 2 ** 30]);
    await expect(file.readFloat32('i')).rejects.toMatchObject({ code: 'safetensors_bad_dtype' });
    await expect(file.readInt32('a')).rejects.toMatchObject({ code: 'safetensors_bad_dtype' });
    await expect(file.readFloat32('missing')).rejects.toMatchObject({ code: 'safetensors_unknown_tensor' });
  });

  it('converts BF16 and I64 written by other tools', async () => {
    // bf16 0x3fc0 = 1.5, 0xc000 = -2; i64 little-endian 3 and -4.
    const data = new Uint8Array([
      0xc0,
      0x3f,
      0x00,
      0xc0,
      3,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0xfc,
      ...new Array(7).fill(0xff),
    ]);
    const file = SafetensorsFile.fromBytes(
      rawFile(
        JSON.stringify({
          b: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] },
          l: { dtype: 'I64', shape: [2], data_offsets: [4, 20] },
        }),
        data,
      ),
    );
    expect([...(await file.readFloat32('b'))]).toEqual([1.5, -2]);
    expect([...(await file.readInt32('l'))]).toEqual([3, -4]);
  });

  it('rounds float16 to nearest even like torch', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway, rounds to even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float32ToFloat16Bits(70000)).toBe(0x7c00);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
  });

  it('rejects malformed headers with typed codes', () => {
    expect(codeOf(() => SafetensorsFile.fromBytes(new Uint8Array(5)))).toBe('safetensors_truncated');
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(codeOf(() => SafetensorsFile.fromBytes(huge))).toBe('safetensors_bad_header');
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile('{not json')))).toBe('safetensors_bad_header');
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile('[1,2]')))).toBe('safetensors_bad_header');
    const badDtype = JSON.stringify({ a: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } });
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(badDtype, new Uint8Array(1))))).toBe(
      'safetensors_bad_dtype',
    );
    const wrongSize = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } });
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(wrongSize, new Uint8Array(4))))).toBe(
      'safetensors_bad_header',
    );
    const gap = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } });
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(gap, new Uint8Array(8))))).toBe(
      'safetensors_bad_header',
    );
    const ok = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(ok, new Uint8Array(5))))).toBe(
      'safetensors_truncated',
    );
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(ok, new Uint8Array(12))))).toBe(
      'safetensors_bad_header',
    );
    expect(codeOf(() => SafetensorsFile.fromBytes(rawFile(ok, new Uint8Array(8))))).toBeUndefined();
  });

  it('reads from disk one tensor at a time and reports short files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'safetensors-'));
    try {
      const bytes = encodeSafetensors({
        x: { dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
        y: { dtype: 'F16', shape: [1, 2], data: new Float32Array([0.5, -4]) },
      });
      const path = join(dir, 'ok.safetensors');
      await writeFile(path, bytes);
      const file = await SafetensorsFile.open(path);
      expect([...(await file.readFloat32('y'))]).toEqual([0.5, -4]);
      expect([...(await file.readFloat32('x'))]).toEqual([1, 2, 3]);
      await file.close();
      await expect(file.readFloat32('x')).rejects.toMatchObject({ code: 'safetensors_closed' });

      const short = join(dir, 'short.safetensors');
      await writeFile(short, bytes.subarray(0, bytes.byteLength - 3));
      await expect(SafetensorsFile.open(short)).rejects.toMatchObject({ code: 'safetensors_truncated' });
      await writeFile(short, bytes.subarray(0, 20));
      await expect(SafetensorsFile.open(short)).rejects.toMatchObject({ code: 'safetensors_truncated' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
