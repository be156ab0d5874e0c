import { hwc3 } from './convert.ts';
import type { Image8 } from './image.ts';

/**
 * numpy's legacy `np.random.seed(s)` + `np.random.uniform()` stream (MT19937 seeded by init_genrand,
 * 53-bit doubles from two draws): the 1.1 shuffle app seeds numpy with the generation seed, so the same seed
 * gives the same shuffle as the original. Hand-written: no npm package reproduces numpy's seeding.
 */
export class NumpyRandom {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    // numpy's legacy RandomState.seed(int) is init_genrand(seed & 0xffffffff) (not init_by_array).
    const mt = this.mt;
    mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private next32(): number {
    const mt = this.mt;
    if (this.index >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = (mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0)) >>> 0;
      }
      this.index = 0;
    }
    let y = mt[this.index++]!;
    y ^= y >>> 11;
    y = (y ^ ((y << 7) & 0x9d2c5680)) >>> 0;
    y = (y ^ ((y << 15) & 0xefc60000)) >>> 0;
    return (y ^ (y >>> 18)) >>> 0;
  }

  /** `np.random.random_sample()`: a double in [0, 1). */
  random(): number {
    const a = this.next32() >>> 5;
    const b = this.next32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

const f32 = Math.fround;

/** cv2's interpolateCubic (A = -0.75), in float32 arithmetic as OpenCV computes it. */
function cubic(x: number): [number, number, number, number] {
  const A = -0.75;
  const x1 = f32(x + 1);
  const c0 = f32(f32(f32(f32(f32(f32(A * x1) - f32(5 * A)) * x1) + f32(8 * A)) * x1) - f32(4 * A));
  const c1 = f32(f32(f32(f32(f32(f32(A + 2) * x) - f32(A + 3)) * x) * x) + 1);
  const y = f32(1 - x);
  const c2 = f32(f32(f32(f32(f32(f32(A + 2) * y) - f32(A + 3)) * y) * y) + 1);
  return [c0, c1, c2, f32(f32(f32(1 - c0) - c1) - c2)];
}

/**
 * cv2.resize(INTER_CUBIC) of a one-channel float64 grid (the noise grid): float32 source positions and
 * coefficients, double sums, borders replicated, horizontal pass first, as OpenCV's resize does for 64F.
 */
function cubicResize(src: Float64Array, sw: number, sh: number, dw: number, dh: number): Float64Array {
  const taps = (srcSize: number, dstSize: number) => {
    const scale = 1 / (dstSize / srcSize);
    return Array.from({ length: dstSize }, (_, d) => {
      const x = f32((d + 0.5) * scale - 0.5);
      const base = Math.floor(x);
      const weights = cubic(f32(x - base));
      const index = [-1, 0, 1, 2].map((k) => Math.min(Math.max(base + k, 0), srcSize - 1));
      return { index, weights };
    });
  };
  const tx = taps(sw, dw);
  const ty = taps(sh, dh);
  const rows = new Float64Array(sh * dw);
  for (let y = 0; y < sh; y++)
    for (let x = 0; x < dw; x++) {
      const { index, weights } = tx[x]!;
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += weights[k]! * src[y * sw + index[k]!]!;
      rows[y * dw + x] = sum;
    }
  const out = new Float64Array(dh * dw);
  for (let y = 0; y < dh; y++) {
    const { index, weights } = ty[y]!;
    for (let x = 0; x < dw; x++) {
      let sum = 0;
      for (let k = 0; k < 4; k++) sum += weights[k]! * rows[index[k]! * dw + x]!;
      out[y * dw + x] = sum;
    }
  }
  return out;
}

/** annotator.util.make_noise_disk(H, W, 1, F): smooth noise in [0, 1] from a coarse uniform grid. */
function noiseDisk(random: NumpyRandom, h: number, w: number, f: number): Float64Array {
  const gh = Math.floor(h / f) + 2;
  const gw = Math.floor(w / f) + 2;
  const grid = new Float64Array(gh * gw);
  for (let i = 0; i < grid.length; i++) grid[i] = random.random();
  const big = cubicResize(grid, gw, gh, w + 2 * f, h + 2 * f);
  const out = new Float64Array(h * w);
  let min = Infinity;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = big[(y + f) * (w + 2 * f) + x + f]!;
      out[y * w + x] = v;
      if (v < min) min = v;
    }
  let max = -Infinity;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i]! - min;
    if (out[i]! > max) max = out[i]!;
  }
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / max;
  return out;
}

/**
 * Tile resample (A1111's tile_resample): the image shrunk by `rate` with INTER_AREA-style averaging (`rate` < 1.1
 * returns it as it is); the caller then resizes it to the output size.
 */
export function tileResample(
  img: Image8,
  rate: number,
  resize: (img: Image8<3>, w: number, h: number) => Image8<3>,
): Image8<3> {
  const rgb = hwc3(img);
  if (rate < 1.1) return rgb;
  return resize(rgb, Math.max(1, Math.floor(rgb.width / rate)), Math.max(1, Math.floor(rgb.height / rate)));
}

/** cvRound: nearest integer, halves to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * OpenCV's bilinear remap table (initInterTab2D, INTER_TAB_SIZE 32): per sub-pixel position, four 15-bit weights
 * made from float32 products, their rounding error put on the largest (or smallest) weight so they sum to 32768.
 */
const remapTable: Int32Array = (() => {
  const table = new Int32Array(32 * 32 * 4);
  for (let iy = 0; iy < 32; iy++)
    for (let ix = 0; ix < 32; ix++) {
      const fy = Math.fround(iy / 32);
      const fx = Math.fround(ix / 32);
      const vy = [Math.fround(1 - fy), fy];
      const vx = [Math.fround(1 - fx), fx];
      const w = [0, 0, 0, 0];
      let sum = 0;
      for (let k1 = 0; k1 < 2; k1++)
        for (let k2 = 0; k2 < 2; k2++) {
          const v = Math.fround(vy[k1]! * vx[k2]!);
          w[k1 * 2 + k2] = roundHalfEven(Math.fround(v * 32768));
          sum += w[k1 * 2 + k2]!;
        }
      const diff = sum - 32768;
      if (diff !== 0) {
        let min = 0;
        let max = 0;
        for (let k = 0; k < 4; k++) {
          if (w[k]! < w[min]!) min = k;
          else if (w[k]! > w[max]!) max = k;
        }
        if (diff < 0) w[max] = w[max]! - diff;
        else w[min] = w[min]! - diff;
      }
      table.set(w, (iy * 32 + ix) * 4);
    }
  return table;
})();

/**
 * cv2.remap(img, map, INTER_LINEAR) of an 8-bit image with a float32 map, as OpenCV computes it: coordinates
 * rounded to 1/32 pixel, the fixed-point weight table above, constant (zero) border.
 */
function remapLinear(
  img: Image8<3>,
  mapX: Float32Array,
  mapY: Float32Array,
  w: number,
  h: number,
): Image8<3> {
  const out = new Uint8Array(w * h * 3);
  const { width: sw, height: sh, data } = img;
  const pixel = (x: number, y: number, c: number) =>
    x >= 0 && y >= 0 && x < sw && y < sh ? data[(y * sw + x) * 3 + c]! : 0;
  for (let i = 0; i < w * h; i++) {
    const fx = roundHalfEven(mapX[i]! * 32);
    const fy = roundHalfEven(mapY[i]! * 32);
    const x0 = fx >> 5;
    const y0 = fy >> 5;
    const t = ((fy & 31) * 32 + (fx & 31)) * 4;
    const w00 = remapTable[t]!;
    const w01 = remapTable[t + 1]!;
    const w10 = remapTable[t + 2]!;
    const w11 = remapTable[t + 3]!;
    for (let c = 0; c < 3; c++) {
      const v =
        pixel(x0, y0, c) * w00 +
        pixel(x0 + 1, y0, c) * w01 +
        pixel(x0, y0 + 1, c) * w10 +
        pixel(x0 + 1, y0 + 1, c) * w11;
      out[i * 3 + c] = Math.min(255, Math.max(0, (v + 16384) >> 15));
    }
  }
  return { width: w, height: h, channels: 3, data: out };
}

/**
 * ControlNet 1.1's content shuffle (`ContentShuffleDetector(img, w=W, h=H, f=256)` after `np.random.seed(seed)`):
 * a W x H map whose pixels are sampled from the whole input at smooth random positions.
 */
export function contentShuffle(img: Image8, width: number, height: number, seed: number): Image8<3> {
  const rgb = hwc3(img);
  const random = new NumpyRandom(seed);
  const f = 256;
  const nx = noiseDisk(random, height, width, f);
  const ny = noiseDisk(random, height, width, f);
  const mapX = new Float32Array(width * height);
  const mapY = new Float32Array(width * height);
  for (let i = 0; i < mapX.length; i++) {
    mapX[i] = nx[i]! * (rgb.width - 1);
    mapY[i] = ny[i]! * (rgb.height - 1);
  }
  return remapLinear(rgb, mapX, mapY, width, height);
}

/** The mask's repaint pixels (1): white after HWC3 (> 127 on the first channel), as the worker's inpaint reads it. */
export function maskRepaint(mask: Image8): Uint8Array {
  const rgb = hwc3(mask);
  const out = new Uint8Array(rgb.width * rgb.height);
  for (let i = 0; i < out.length; i++) out[i] = rgb.data[i * 3]! > 127 ? 1 : 0;
  return out;
}

/**
 * The inpaint preview: the image with the pixels to repaint transparent (RGBA), which is how A1111 shows the
 * inpaint control; the model's control is the same image with those pixels at -1.
 */
export function inpaintPreview(img: Image8, mask: Image8): Image8<4> {
  const rgb = hwc3(img);
  if (mask.width !== rgb.width || mask.height !== rgb.height)
    throw new RangeError(`mask is ${mask.width}x${mask.height}, image ${rgb.width}x${rgb.height}`);
  const repaint = maskRepaint(mask);
  const out = new Uint8Array(rgb.width * rgb.height * 4);
  for (let i = 0; i < repaint.length; i++) {
    out[i * 4] = rgb.data[i * 3]!;
    out[i * 4 + 1] = rgb.data[i * 3 + 1]!;
    out[i * 4 + 2] = rgb.data[i * 3 + 2]!;
    out[i * 4 + 3] = repaint[i] ? 0 : 255;
  }
  return { width: rgb.width, height: rgb.height, channels: 4, data: out };
}
