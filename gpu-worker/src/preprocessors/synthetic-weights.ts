/**
 * Seeded synthetic weights for an annotator checkpoint's layout, identical to what
 * `test/fixtures/preprocessors/synthetic_weights.py` makes in PyTorch (same formula, float64 arithmetic rounded
 * once to float32): the parity references ran the original annotator code on these weights, and the tests
 * regenerate them from the checkpoint's key manifest instead of storing hundreds of MB of random floats.
 *
 * Element i of a tensor is u = mulberry32(seed ^ fnv1a(name), i) in [0, 1), mapped by the tensor's role:
 * - `*running_var`: 0.5 + u (positive variances)
 * - 1-D `*weight` (norm scales): 1 + 0.2 (u - 0.5)
 * - other 1-D or 0-D tensors (biases, means): 0.2 (u - 0.5)
 * - rank >= 2: (2u - 1) sqrt(6 / fan_in), fan_in = product of all dims after the first (He-uniform)
 * Integer buffers (`num_batches_tracked`) are zero.
 */

/** One tensor of a checkpoint manifest: its name, PyTorch shape and dtype. */
export interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
}

/** 32-bit FNV-1a of a string's UTF-8 bytes. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Counter-based mulberry32: the i-th draw (i from 0) of the stream seeded with `seed`, in [0, 1). */
function mulberry32At(seed: number, i: number): number {
  let t = (seed + Math.imul(i + 1, 0x6d2b79f5)) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** Whether a manifest dtype holds integers (left at zero). */
export function isIntegerDtype(dtype: string): boolean {
  return /int|long|bool/i.test(dtype) || dtype === 'I64' || dtype === 'I32';
}

/** The synthetic values of one tensor (float32), or zeros for integer buffers. */
export function syntheticTensor(entry: ManifestEntry, seed: number): Float32Array {
  const size = entry.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  if (isIntegerDtype(entry.dtype)) return out;
  const stream = (seed ^ fnv1a(entry.name)) >>> 0;
  const rank = entry.shape.length;
  const fanIn = rank >= 2 ? entry.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  const bound = Math.sqrt(6 / fanIn);
  const kind = entry.name.endsWith('running_var')
    ? 'var'
    : rank <= 1 && entry.name.endsWith('weight')
      ? 'scale'
      : rank <= 1
        ? 'bias'
        : 'matrix';
  for (let i = 0; i < size; i++) {
    const u = mulberry32At(stream, i);
    out[i] =
      kind === 'var'
        ? 0.5 + u
        : kind === 'scale'
          ? 1 + 0.2 * (u - 0.5)
          : kind === 'bias'
            ? 0.2 * (u - 0.5)
            : (2 * u - 1) * bound;
  }
  return out;
}
