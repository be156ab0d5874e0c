/**
 * Seeded Gaussian noise that is identical on every backend: generated in JavaScript from Philox4x32-10
 * (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), a counter-based generator, with Box-Muller.
 * Hand-written because it is a few lines, must be bit-exact across platforms, and needs random access by
 * counter (one stream per purpose and step) that common npm PRNGs do not offer.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** 32x32 -> 64-bit multiply: [high word, low word]. */
function mulHiLo(a: number, b: number): [number, number] {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  const hi = (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

/** One Philox4x32-10 block: 4 random uint32 for a 128-bit counter and 64-bit key. */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): Uint32Array {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulHiLo(M0, c0);
    const [hi1, lo1] = mulHiLo(M1, c2);
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

/**
 * `count` standard normal float32 values for (seed, stream): the same seed and stream always give the same
 * values. seed: integer 0..2^53-1; stream: integer 0..2^32-1 (e.g. 0 for x_T, 1 + step for the per-step
 * noise of DDIM with eta, euler_a and lcm).
 */
export function gaussianNoise(seed: number, stream: number, count: number): Float32Array {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`seed must be a non-negative safe integer`);
  const key: [number, number] = [(seed % 2 ** 32) >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
  const out = new Float32Array(count);
  const uniform = (bits: number) => (bits + 0.5) / 2 ** 32; // in (0, 1): log() stays finite
  for (let block = 0; block * 4 < count; block++) {
    const r = philox4x32([block >>> 0, stream >>> 0, Math.floor(block / 2 ** 32) >>> 0, 0], key);
    for (let pair = 0; pair < 2; pair++) {
      const radius = Math.sqrt(-2 * Math.log(uniform(r[2 * pair]!)));
      const angle = 2 * Math.PI * uniform(r[2 * pair + 1]!);
      const i = block * 4 + pair * 2;
      if (i < count) out[i] = radius * Math.cos(angle);
      if (i + 1 < count) out[i + 1] = radius * Math.sin(angle);
    }
  }
  return out;
}

/**
 * FNV-1a 32-bit hash of a name, used as its own noise stream: seeded parameter values then depend on the name,
 * not on the order parameters are declared in.
 */
export function streamOf(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
