import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSyntheticCheckpoint } from '../src/preprocessors/synthetic-annotators.ts';
import type { ManifestEntry } from '../src/preprocessors/synthetic-weights.ts';

/** One tensor of a fixture safetensors file, in its stored dtype (row-major). */
export interface FixtureTensor {
  shape: number[];
  data: Uint8Array | Int32Array | Float32Array | Float64Array;
}

const ARRAYS = { U8: Uint8Array, I32: Int32Array, F32: Float32Array, F64: Float64Array } as const;

/**
 * Every tensor of a small reference `.safetensors` fixture with its own dtype (U8 images, F64 coordinates), plus
 * its metadata; SafetensorsFile reads float weights as float32 only.
 */
export async function readFixtureTensors(
  path: string,
): Promise<{ tensors: Map<string, FixtureTensor>; metadata: Record<string, string> }> {
  const bytes = await readFile(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  const start = 8 + headerLength;
  const tensors = new Map<string, FixtureTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets } = entry as {
      dtype: string;
      shape: number[];
      data_offsets: [number, number];
    };
    const Ctor = ARRAYS[dtype as keyof typeof ARRAYS];
    if (!Ctor) throw new Error(`${path}: tensor ${name} has unsupported dtype ${dtype}`);
    // Copy so the typed array is aligned whatever the offset.
    const raw = bytes.subarray(start + data_offsets[0], start + data_offsets[1]);
    const aligned = new Uint8Array(raw);
    tensors.set(name, {
      shape,
      data: new Ctor(aligned.buffer, 0, aligned.byteLength / Ctor.BYTES_PER_ELEMENT),
    });
  }
  return { tensors, metadata: (header.__metadata__ as Record<string, string>) ?? {} };
}

/** A tensor of {@link readFixtureTensors}' result, or an error naming it. */
export function fixtureTensor(tensors: Map<string, FixtureTensor>, name: string): FixtureTensor {
  const tensor = tensors.get(name);
  if (!tensor) throw new Error(`fixture has no tensor ${name}`);
  return tensor;
}

/**
 * Writes a checkpoint manifest's synthetic weights (see synthetic-weights.ts) to `<dir>/<fileName>` as safetensors;
 * `overrides` replace single tensors (fixtures that rescale a layer store its values); integer buffers become I32
 * zeros. Returns the file's path.
 */
export async function writeSyntheticWeights(
  manifestPath: string,
  seed: number,
  dir: string,
  fileName: string,
  overrides: ReadonlyMap<string, Float32Array> = new Map(),
): Promise<string> {
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as ManifestEntry[];
  const path = join(dir, fileName);
  writeSyntheticCheckpoint(manifest, seed, path, overrides);
  return path;
}

/** NCHW float data of one image -> NHWC data. */
export function nchwToNhwcData(data: ArrayLike<number>, shape: readonly number[]): Float32Array {
  const [n, c, h, w] = shape as [number, number, number, number];
  const out = new Float32Array(n * c * h * w);
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + k] = data[((b * c + k) * h + y) * w + x]!;
  return out;
}
