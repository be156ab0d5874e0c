import { readFile } from 'node:fs/promises';
import { fixturePath } from '../../../test/parity-helpers.ts';

/** Reads every tensor of one of this family's small `.io.safetensors` fixtures (F64, F32, U8, I32) into typed arrays. */
export async function readOpenposeFixture(
  name: string,
): Promise<Map<string, { shape: number[]; data: Float64Array | Float32Array | Uint8Array | Int32Array }>> {
  const bytes = await readFile(fixturePath(`preprocessors/openpose/${name}`));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<
    string,
    { shape: number[]; data: Float64Array | Float32Array | Uint8Array | Int32Array }
  >();
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const raw = new Uint8Array(bytes.subarray(8 + n + info.data_offsets[0], 8 + n + info.data_offsets[1]));
    const data =
      info.dtype === 'U8'
        ? new Uint8Array(raw.buffer)
        : info.dtype === 'F64'
          ? new Float64Array(raw.buffer)
          : info.dtype === 'I32'
            ? new Int32Array(raw.buffer)
            : new Float32Array(raw.buffer);
    out.set(key, { shape: info.shape, data });
  }
  return out;
}

/** Reads a JSON fixture of this family. */
export async function readOpenposeJson<T>(name: string): Promise<T> {
  return JSON.parse(await readFile(fixturePath(`preprocessors/openpose/${name}`), 'utf8')) as T;
}

/** Number of differing bytes between two maps. */
export function countDiff(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}
