// cv2.resize (OpenCV 4.x, modules/imgproc/src/resize.cpp) reproduced bit for bit on the CPU path OpenCV takes
// without IPP/OpenCL: fixed-point coefficients (INTER_RESIZE_COEF_BITS = 11) for 8-bit linear/cubic/Lanczos,
// float coefficients with float sums for float32 and double sums for float64, INTER_AREA's integer-scale fast path and its general (fractional) path, and
// saturate_cast rounding (half to even). Float arithmetic is emulated with Math.fround at every step OpenCV
// rounds to float, in OpenCV's summation order, including the order of its 128-bit SIMD loops where that
// differs from the scalar code (the universal intrinsics resize.cpp uses on SSE2/NEON baseline builds).
// Checked against Debian's python3-opencv 4.6 (shared/test/fixtures/cv-resize).
import { ImageError } from './errors.ts';

/** Pixel storage cvResize accepts: 8-bit (CV_8U), float32 (CV_32F) or float64 (CV_64F) samples. */
export type CvPixels = Uint8Array | Float32Array | Float64Array;

/** An HWC-interleaved image with 1..4 channels, as a cv2 numpy array of uint8, float32 or float64. */
export interface CvImage<D extends CvPixels = CvPixels, C extends number = number> {
  width: number;
  height: number;
  channels: C;
  data: D;
}

/** cv2.INTER_NEAREST / INTER_LINEAR / INTER_CUBIC / INTER_AREA / INTER_LANCZOS4. */
export type CvInterpolation = 'nearest' | 'linear' | 'cubic' | 'area' | 'lanczos4';

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;
const DBL_EPSILON = 2.220446049250313e-16;
const f = Math.fround;
/** Rounding of the working type: float for CV_32F, none for CV_64F (sums in double). */
const noRound = (v: number) => v;

/** cvRound / lrint: nearest integer, ties to even. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const clamped = new Uint8ClampedArray(1);

/** saturate_cast<uchar>(float or double): Uint8ClampedArray stores round half to even and saturate. */
function satU8(v: number): number {
  clamped[0] = v;
  return clamped[0] as number;
}

/** saturate_cast<short>(float). */
function satI16(v: number): number {
  const r = roundEven(v);
  return r < -32768 ? -32768 : Math.min(r, 32767);
}

/** interpolateCubic (A = -0.75), in float arithmetic. */
function cubicCoeffs(x: number, out: Float64Array): void {
  const A = -0.75; // 5A = -3.75, 8A = -6, 4A = -3 (exact in float)
  const x1 = f(x + 1);
  out[0] = f(f(f(f(f(f(A * x1) - -3.75) * x1) + -6) * x1) - -3);
  out[1] = f(f(f(f(f(1.25 * x) - 2.25) * x) * x) + 1);
  const y = f(1 - x);
  out[2] = f(f(f(f(f(1.25 * y) - 2.25) * y) * y) + 1);
  out[3] = f(f(f(1 - (out[0] as number)) - (out[1] as number)) - (out[2] as number));
}

const S45 = Math.SQRT1_2;
const LANCZOS_CS = [1, 0, -S45, -S45, 0, 1, S45, -S45, -1, 0, S45, S45, 0, -1, -S45, S45];

/** interpolateLanczos4: sin(pi x) sin(pi x / 4) / (pi x / 4)^2 by the angle-sum trick, normalised in float. */
function lanczos4Coeffs(x: number, out: Float64Array): void {
  const x3 = f(x + 3);
  const y0 = -x3 * Math.PI * 0.25;
  const s0 = Math.sin(y0);
  const c0 = Math.cos(y0);
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    const d = f(x3 - i);
    let c: number;
    if (Math.abs(d) >= 9.999999974752427e-7) {
      const y = -d * Math.PI * 0.25;
      c = f(((LANCZOS_CS[2 * i] as number) * s0 + (LANCZOS_CS[2 * i + 1] as number) * c0) / (y * y));
    } else c = 1.0000000150474662e30; // 1e30f: the tap at distance 0 swamps the others
    out[i] = c;
    sum = f(sum + c);
  }
  const inv = f(1 / sum);
  for (let i = 0; i < 8; i++) out[i] = f((out[i] as number) * inv);
}

/** Per destination index along one axis: first source index (unclamped) and `ksize` coefficients. */
interface AxisTable {
  ofs: Int32Array;
  coef: Float64Array;
}

/**
 * The coefficient tables of resize.cpp's generic path. `clampEnds` is the x axis's special case for
 * linear/area (source index and fraction pinned at the image edges); the y axis keeps them as computed.
 */
function axisTable(
  srcSize: number,
  dstSize: number,
  scale: number,
  invScale: number,
  ksize: number,
  mode: 'linear' | 'area' | 'cubic' | 'lanczos4',
  clampEnds: boolean,
  fixed: boolean,
): AxisTable {
  const ofs = new Int32Array(dstSize);
  const coef = new Float64Array(dstSize * ksize);
  const cbuf = new Float64Array(8);
  const interp = mode === 'cubic' || mode === 'lanczos4';
  for (let d = 0; d < dstSize; d++) {
    let s: number;
    let fr: number;
    if (mode !== 'area') {
      fr = f((d + 0.5) * scale - 0.5);
      s = Math.floor(fr);
      fr = f(fr - s);
    } else {
      s = Math.floor(d * scale);
      fr = f(d + 1 - (s + 1) * invScale);
      fr = fr <= 0 ? 0 : f(fr - Math.floor(fr));
    }
    if (clampEnds && !interp) {
      if (s < 0) {
        fr = 0;
        s = 0;
      }
      if (s >= srcSize - 1) {
        fr = 0;
        s = srcSize - 1;
      }
    }
    ofs[d] = s;
    if (mode === 'cubic') cubicCoeffs(fr, cbuf);
    else if (mode === 'lanczos4') lanczos4Coeffs(fr, cbuf);
    else {
      cbuf[0] = f(1 - fr);
      cbuf[1] = fr;
    }
    for (let k = 0; k < ksize; k++) {
      const c = cbuf[k] as number;
      coef[d * ksize + k] = fixed ? satI16(c * COEF_SCALE) : c;
    }
  }
  return { ofs, coef };
}

/** resizeNN: source index floor(d * (1 / inv_scale)), clamped to the last pixel. */
function resizeNearest<D extends CvPixels>(
  img: CvImage<D>,
  width: number,
  height: number,
  invX: number,
  invY: number,
): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const ifx = 1 / invX;
  const ify = 1 / invY;
  const out = new (data.constructor as { new (n: number): D })(width * height * cn);
  const xs = new Int32Array(width);
  for (let x = 0; x < width; x++) xs[x] = Math.min(Math.floor(x * ifx), sw - 1) * cn;
  for (let y = 0; y < height; y++) {
    const srcRow = Math.min(Math.floor(y * ify), sh - 1) * sw * cn;
    let o = y * width * cn;
    for (let x = 0; x < width; x++) {
      const s = srcRow + (xs[x] as number);
      for (let c = 0; c < cn; c++) out[o++] = data[s + c] as number;
    }
  }
  return out;
}

/**
 * resizeAreaFast_: every output pixel averages an iscaleX x iscaleY block (integer scales). Blocks cut by the
 * right/bottom edge (only when an fx/fy size rounded up) average the samples they have.
 */
function resizeAreaFast<D extends CvPixels>(
  img: CvImage<D>,
  width: number,
  height: number,
  ix: number,
  iy: number,
): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const isFloat = !(data instanceof Uint8Array);
  const r = data instanceof Float64Array ? noRound : f; // WT: float, or double for CV_64F
  const out = new (data.constructor as { new (n: number): D })(width * height * cn);
  const area = ix * iy;
  const scale = f(1 / area);
  const rowLen = sw * cn;
  const dstRow = width * cn;
  // Block offsets in OpenCV's order (row by row), relative to the block's top-left sample.
  const ofs = new Int32Array(area);
  for (let sy = 0, k = 0; sy < iy; sy++) for (let sx = 0; sx < ix; sx++) ofs[k++] = sy * rowLen + sx * cn;
  const half = ix === 2 && iy === 2;
  // 8-bit 2x2 with 1/3/4 channels: (sum + 2) >> 2 (ResizeAreaFastVec); float 2x2 with 1/4 channels: SIMD order.
  const shift8 = !isFloat && half && cn !== 2;
  const simdF = data instanceof Float32Array && half && (cn === 1 || cn === 4);
  const whole = Math.floor(sw / ix) * cn; // samples per row whose block lies inside the image
  const colSum = !isFloat && !shift8 ? new Int32Array(rowLen) : undefined;
  for (let dy = 0; dy < height; dy++) {
    const sy0 = dy * iy;
    const base = sy0 * rowLen;
    const o = dy * dstRow;
    const w = sy0 + iy <= sh ? whole : 0;
    // The float SIMD loop covers whole groups of 4 samples; the rest take the scalar order below.
    const simdEnd = w & ~3;
    if (shift8) areaHalfU8(data as Uint8Array, out as Uint8Array, base, o, w, cn, rowLen);
    else if (colSum && w > 0) {
      // 8-bit: integer block sums are exact in any order, so sum the block's rows first (sequential reads).
      colSum.fill(0);
      for (let sy = 0; sy < iy; sy++) {
        const row = base + sy * rowLen;
        for (let i = 0; i < rowLen; i++) colSum[i] = (colSum[i] as number) + (data[row + i] as number);
      }
      for (let dx = 0; dx < w; dx++) {
        const c = dx % cn;
        const s = ((dx - c) / cn) * ix * cn + c;
        let sum = 0;
        for (let sx = 0; sx < ix; sx++) sum += colSum[s + sx * cn] as number;
        out[o + dx] = satU8(f(sum * scale));
      }
    } else {
      for (let dx = 0; dx < w; dx++) {
        const c = dx % cn;
        const s = base + ((dx - c) / cn) * ix * cn + c;
        if (simdF && dx < simdEnd) {
          const a = f((data[s] as number) + (data[s + cn] as number));
          const b = f((data[s + rowLen] as number) + (data[s + rowLen + cn] as number));
          out[o + dx] = f(f(a + b) * 0.25);
        } else if (!isFloat) {
          let sum = 0;
          for (let k = 0; k < area; k++) sum += data[s + (ofs[k] as number)] as number;
          out[o + dx] = satU8(f(sum * scale));
        } else {
          let sum = 0;
          let k = 0;
          for (; k <= area - 4; k += 4) {
            const g = r(
              r(
                r((data[s + (ofs[k] as number)] as number) + (data[s + (ofs[k + 1] as number)] as number)) +
                  (data[s + (ofs[k + 2] as number)] as number),
              ) + (data[s + (ofs[k + 3] as number)] as number),
            );
            sum = r(sum + g);
          }
          for (; k < area; k++) sum = r(sum + (data[s + (ofs[k] as number)] as number));
          out[o + dx] = r(sum * scale);
        }
      }
    }
    for (let dx = w; dx < dstRow; dx++) {
      // Partial block: the mean of the samples inside the image, (float)sum / count (float even for CV_64F).
      const c = dx % cn;
      const sx0 = ((dx - c) / cn) * ix * cn + c;
      let sum = 0;
      let count = 0;
      for (let sy = 0; sy < iy && sy0 + sy < sh; sy++) {
        const row = (sy0 + sy) * rowLen + sx0;
        for (let sx = 0; sx < ix * cn && sx0 + sx < rowLen; sx += cn) {
          sum = isFloat ? r(sum + (data[row + sx] as number)) : sum + (data[row + sx] as number);
          count++;
        }
      }
      out[o + dx] = isFloat ? f(f(sum) / count) : satU8(f(sum / count));
    }
  }
  return out;
}

/** The 8-bit 2x2 area fast path over `count` samples of one output row: (a + b + c + d + 2) >> 2. */
function areaHalfU8(
  data: Uint8Array,
  out: Uint8Array,
  base: number,
  o: number,
  count: number,
  cn: number,
  rowLen: number,
): void {
  for (let dx = 0, p = base; dx < count; dx += cn, p += 2 * cn) {
    for (let c = 0; c < cn; c++) {
      const q = p + c;
      out[o + dx + c] =
        ((data[q] as number) +
          (data[q + cn] as number) +
          (data[q + rowLen] as number) +
          (data[q + rowLen + cn] as number) +
          2) >>
        2;
    }
  }
}

/** computeResizeAreaTab: (source index, destination index, weight) triples of the general area path. */
function areaTable(srcSize: number, dstSize: number, scale: number) {
  const si: number[] = [];
  const di: number[] = [];
  const w: number[] = [];
  for (let d = 0; d < dstSize; d++) {
    const fs1 = d * scale;
    const fs2 = fs1 + scale;
    const cell = Math.min(scale, srcSize - fs1);
    let s1 = Math.ceil(fs1);
    let s2 = Math.floor(fs2);
    s2 = Math.min(s2, srcSize - 1);
    s1 = Math.min(s1, s2);
    if (s1 - fs1 > 1e-3) {
      si.push(s1 - 1);
      di.push(d);
      w.push(f((s1 - fs1) / cell));
    }
    for (let s = s1; s < s2; s++) {
      si.push(s);
      di.push(d);
      w.push(f(1 / cell));
    }
    if (fs2 - s2 > 1e-3) {
      si.push(s2);
      di.push(d);
      w.push(f(Math.min(Math.min(fs2 - s2, 1), cell) / cell));
    }
  }
  return { si: Int32Array.from(si), di: Int32Array.from(di), w: Float64Array.from(w) };
}

/** ResizeArea_Invoker: exact-overlap weights, rows accumulated in float, output saturate_cast. */
function resizeAreaGeneral<D extends CvPixels>(
  img: CvImage<D>,
  width: number,
  height: number,
  scaleX: number,
  scaleY: number,
): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const isFloat = !(data instanceof Uint8Array);
  const double = data instanceof Float64Array;
  const r = double ? noRound : f; // WT: float, or double for CV_64F
  const out = new (data.constructor as { new (n: number): D })(width * height * cn);
  const xt = areaTable(sw, width, scaleX);
  const yt = areaTable(sh, height, scaleY);
  const rowLen = width * cn;
  // Float32Array stores round to float, which is the rounding of OpenCV's float sums.
  const buf = double ? new Float64Array(rowLen) : new Float32Array(rowLen);
  const sum = double ? new Float64Array(rowLen) : new Float32Array(rowLen);
  const nx = xt.si.length;
  let bufRow = -1;
  for (let j = 0; j < yt.si.length; j++) {
    const sy = yt.si[j] as number;
    const dy = yt.di[j] as number;
    const beta = yt.w[j] as number;
    if (sy !== bufRow) {
      // The horizontal pass depends only on the source row; boundary rows serve two output rows.
      buf.fill(0);
      const src = sy * sw * cn;
      for (let k = 0; k < nx; k++) {
        const sp = src + (xt.si[k] as number) * cn;
        const dp = (xt.di[k] as number) * cn;
        const a = xt.w[k] as number;
        for (let c = 0; c < cn; c++) buf[dp + c] = (buf[dp + c] as number) + r((data[sp + c] as number) * a);
      }
      bufRow = sy;
    }
    const first = j === 0 || yt.di[j - 1] !== dy;
    if (first) for (let i = 0; i < rowLen; i++) sum[i] = beta * (buf[i] as number);
    else for (let i = 0; i < rowLen; i++) sum[i] = (sum[i] as number) + r(beta * (buf[i] as number));
    const last = j === yt.si.length - 1 || yt.di[j + 1] !== dy;
    if (last) {
      const o = dy * rowLen;
      if (isFloat) for (let i = 0; i < rowLen; i++) out[o + i] = sum[i] as number;
      else for (let i = 0; i < rowLen; i++) out[o + i] = satU8(sum[i] as number);
    }
  }
  return out;
}

/** Horizontal taps for every output sample of a row, sample-major: source sample index in the row, weight. */
interface Taps {
  index: Int32Array;
  weight: Float64Array;
}

/** Replicated-border taps (OpenCV clamps each channel to the first/last pixel the same way). */
function rowTaps(xt: AxisTable, sw: number, width: number, cn: number, ksize: number): Taps {
  const back = ksize / 2 - 1; // taps start this many pixels before ofs
  const index = new Int32Array(width * cn * ksize);
  const weight = new Float64Array(width * cn * ksize);
  for (let dx = 0; dx < width; dx++) {
    const s0 = (xt.ofs[dx] as number) - back;
    for (let c = 0; c < cn; c++) {
      const t = (dx * cn + c) * ksize;
      for (let k = 0; k < ksize; k++) {
        index[t + k] = Math.min(Math.max(s0 + k, 0), sw - 1) * cn + c;
        weight[t + k] = xt.coef[dx * ksize + k] as number;
      }
    }
  }
  return { index, weight };
}

/**
 * Horizontally resampled source rows, kept in a ring of `ksize` slots like resizeGeneric_'s buffer: output
 * rows visit source rows in increasing order, so a row that falls out of its slot is never needed again.
 */
class RowRing<B extends Int32Array | Float32Array | Float64Array> {
  private readonly tags: Int32Array;
  constructor(
    readonly buf: B,
    private readonly rowLen: number,
    private readonly ksize: number,
    private readonly fill: (sy: number, offset: number) => void,
  ) {
    this.tags = new Int32Array(ksize).fill(-1);
  }

  /** Offset in `buf` of source row `sy` resampled horizontally. */
  row(sy: number): number {
    const slot = sy % this.ksize;
    const offset = slot * this.rowLen;
    if (this.tags[slot] !== sy) {
      this.fill(sy, offset);
      this.tags[slot] = sy;
    }
    return offset;
  }
}

/** The `ksize` clamped source rows of output row dy. */
function sourceRows(yt: AxisTable, sh: number, dy: number, ksize: number, out: Int32Array): void {
  const sy0 = (yt.ofs[dy] as number) - (ksize / 2 - 1);
  for (let k = 0; k < ksize; k++) out[k] = Math.min(Math.max(sy0 + k, 0), sh - 1);
}

/** resizeGeneric_ for CV_8U: integer horizontal pass (HResize*<uchar, int, short>), fixed-point vertical pass. */
function separableU8(
  data: Uint8Array,
  sw: number,
  sh: number,
  cn: number,
  width: number,
  height: number,
  ksize: number,
  xt: AxisTable,
  yt: AxisTable,
): Uint8Array {
  const rowLen = width * cn;
  const srcRowLen = sw * cn;
  const { index, weight } = rowTaps(xt, sw, width, cn, ksize);
  const w = Int32Array.from(weight); // fixed-point coefficients
  const ring = new RowRing(new Int32Array(ksize * rowLen), rowLen, ksize, (sy, o) => {
    const src = sy * srcRowLen;
    const h = ring.buf;
    // Integer sums are exact in any order; unrolled per kernel size (V8 does not unroll for us).
    if (ksize === 8) {
      for (let i = 0, t = 0; i < rowLen; i++, t += 8) {
        h[o + i] =
          (data[src + (index[t] as number)] as number) * (w[t] as number) +
          (data[src + (index[t + 1] as number)] as number) * (w[t + 1] as number) +
          (data[src + (index[t + 2] as number)] as number) * (w[t + 2] as number) +
          (data[src + (index[t + 3] as number)] as number) * (w[t + 3] as number) +
          (data[src + (index[t + 4] as number)] as number) * (w[t + 4] as number) +
          (data[src + (index[t + 5] as number)] as number) * (w[t + 5] as number) +
          (data[src + (index[t + 6] as number)] as number) * (w[t + 6] as number) +
          (data[src + (index[t + 7] as number)] as number) * (w[t + 7] as number);
      }
    } else if (ksize === 4) {
      for (let i = 0, t = 0; i < rowLen; i++, t += 4) {
        h[o + i] =
          (data[src + (index[t] as number)] as number) * (w[t] as number) +
          (data[src + (index[t + 1] as number)] as number) * (w[t + 1] as number) +
          (data[src + (index[t + 2] as number)] as number) * (w[t + 2] as number) +
          (data[src + (index[t + 3] as number)] as number) * (w[t + 3] as number);
      }
    } else {
      for (let i = 0, t = 0; i < rowLen; i++, t += 2) {
        h[o + i] =
          (data[src + (index[t] as number)] as number) * (w[t] as number) +
          (data[src + (index[t + 1] as number)] as number) * (w[t + 1] as number);
      }
    }
  });
  const h = ring.buf;
  const out = new Uint8Array(width * height * cn);
  // Uint8ClampedArray stores round half to even and saturate: saturate_cast<uchar> of a float or an int.
  const outC = new Uint8ClampedArray(out.buffer);
  const simdEnd = ksize === 4 ? rowLen & ~7 : 0;
  const sy = new Int32Array(ksize);
  const r = new Int32Array(ksize);
  for (let dy = 0; dy < height; dy++) {
    const o = dy * rowLen;
    sourceRows(yt, sh, dy, ksize, sy);
    for (let k = 0; k < ksize; k++) r[k] = ring.row(sy[k] as number);
    const beta = yt.coef.subarray(dy * ksize, dy * ksize + ksize);
    if (ksize === 2) {
      // VResizeLinear<uchar>: each product scaled down before the sum, as the SIMD code does.
      const r0 = r[0] as number;
      const r1 = r[1] as number;
      const b0 = beta[0] as number;
      const b1 = beta[1] as number;
      for (let x = 0; x < rowLen; x++) {
        const v =
          (((b0 * ((h[r0 + x] as number) >> 4)) >> 16) + ((b1 * ((h[r1 + x] as number) >> 4)) >> 16) + 2) >>
          2;
        out[o + x] = v & 255;
      }
      continue;
    }
    if (simdEnd > 0) {
      // VResizeCubicVec_32s8u: whole groups of 8 in float, coefficients pre-scaled by 2^-22, last tap first,
      // rounded half to even. (Row values stay below 2^24, so converting them to float is exact.)
      const [r0, r1, r2, r3] = r as unknown as number[];
      const b0 = f((beta[0] as number) * 2 ** -22);
      const b1 = f((beta[1] as number) * 2 ** -22);
      const b2 = f((beta[2] as number) * 2 ** -22);
      const b3 = f((beta[3] as number) * 2 ** -22);
      for (let x = 0; x < simdEnd; x++) {
        let acc = f((h[(r3 as number) + x] as number) * b3);
        acc = f(f((h[(r2 as number) + x] as number) * b2) + acc);
        acc = f(f((h[(r1 as number) + x] as number) * b1) + acc);
        acc = f(f((h[(r0 as number) + x] as number) * b0) + acc);
        outC[o + x] = acc;
      }
    }
    // FixedPtCast<int, uchar, 22>: the exact integer sum, rounded as (sum + 2^21) >> 22, then saturated.
    if (ksize === 8) {
      const [r0, r1, r2, r3, r4, r5, r6, r7] = r as unknown as number[];
      const [b0, b1, b2, b3, b4, b5, b6, b7] = beta as unknown as number[];
      for (let x = 0; x < rowLen; x++) {
        const acc =
          (h[(r0 as number) + x] as number) * (b0 as number) +
          (h[(r1 as number) + x] as number) * (b1 as number) +
          (h[(r2 as number) + x] as number) * (b2 as number) +
          (h[(r3 as number) + x] as number) * (b3 as number) +
          (h[(r4 as number) + x] as number) * (b4 as number) +
          (h[(r5 as number) + x] as number) * (b5 as number) +
          (h[(r6 as number) + x] as number) * (b6 as number) +
          (h[(r7 as number) + x] as number) * (b7 as number);
        outC[o + x] = Math.floor((acc + 2097152) / 4194304);
      }
    } else {
      const [r0, r1, r2, r3] = r as unknown as number[];
      const [b0, b1, b2, b3] = beta as unknown as number[];
      for (let x = simdEnd; x < rowLen; x++) {
        const acc =
          (h[(r0 as number) + x] as number) * (b0 as number) +
          (h[(r1 as number) + x] as number) * (b1 as number) +
          (h[(r2 as number) + x] as number) * (b2 as number) +
          (h[(r3 as number) + x] as number) * (b3 as number);
        outC[o + x] = Math.floor((acc + 2097152) / 4194304);
      }
    }
  }
  return out;
}

/** resizeGeneric_ for CV_32F: float horizontal and vertical passes in OpenCV's summation orders. */
function separableF32(
  data: Float32Array,
  sw: number,
  sh: number,
  cn: number,
  width: number,
  height: number,
  ksize: number,
  xt: AxisTable,
  yt: AxisTable,
): Float32Array {
  const rowLen = width * cn;
  const srcRowLen = sw * cn;
  const { index, weight } = rowTaps(xt, sw, width, cn, ksize);
  const ring = new RowRing(new Float32Array(ksize * rowLen), rowLen, ksize, (sy, o) => {
    const src = sy * srcRowLen;
    const h = ring.buf;
    for (let i = 0, t = 0; i < rowLen; i++) {
      let acc = f((data[src + (index[t] as number)] as number) * (weight[t] as number));
      t++;
      for (let k = 1; k < ksize; k++, t++) {
        acc = f(acc + f((data[src + (index[t] as number)] as number) * (weight[t] as number)));
      }
      h[o + i] = acc;
    }
  });
  const h = ring.buf;
  const out = new Float32Array(width * height * cn);
  // VResizeCubicVec_32f / VResizeLanczos4Vec_32f: 4-lane SIMD over whole groups of 4, accumulating from the
  // last tap back to the first (v_muladd nesting); the rest goes through the scalar loop, first tap to last.
  // (Linear's SIMD and scalar orders agree.) Float32Array stores round to float, so a stored float sum needs
  // no fround of its own; the products added to it do.
  const simdEnd = ksize === 2 ? 0 : rowLen & ~3;
  const sy = new Int32Array(ksize);
  const r = new Int32Array(ksize);
  for (let dy = 0; dy < height; dy++) {
    const o = dy * rowLen;
    sourceRows(yt, sh, dy, ksize, sy);
    for (let k = 0; k < ksize; k++) r[k] = ring.row(sy[k] as number);
    const beta = yt.coef.subarray(dy * ksize, dy * ksize + ksize);
    if (simdEnd > 0) {
      const rl = r[ksize - 1] as number;
      const bl = beta[ksize - 1] as number;
      for (let x = 0; x < simdEnd; x++) out[o + x] = (h[rl + x] as number) * bl;
      for (let k = ksize - 2; k >= 0; k--) {
        const rk = r[k] as number;
        const bk = beta[k] as number;
        for (let x = 0; x < simdEnd; x++) out[o + x] = (out[o + x] as number) + f((h[rk + x] as number) * bk);
      }
    }
    const r0 = r[0] as number;
    const b0 = beta[0] as number;
    for (let x = simdEnd; x < rowLen; x++) out[o + x] = (h[r0 + x] as number) * b0;
    for (let k = 1; k < ksize; k++) {
      const rk = r[k] as number;
      const bk = beta[k] as number;
      for (let x = simdEnd; x < rowLen; x++)
        out[o + x] = (out[o + x] as number) + f((h[rk + x] as number) * bk);
    }
  }
  return out;
}

/** resizeGeneric_ for CV_64F: double sums with float coefficients, first tap to last (no SIMD for 64F). */
function separableF64(
  data: Float64Array,
  sw: number,
  sh: number,
  cn: number,
  width: number,
  height: number,
  ksize: number,
  xt: AxisTable,
  yt: AxisTable,
): Float64Array {
  const rowLen = width * cn;
  const srcRowLen = sw * cn;
  const { index, weight } = rowTaps(xt, sw, width, cn, ksize);
  const ring = new RowRing(new Float64Array(ksize * rowLen), rowLen, ksize, (sy, o) => {
    const src = sy * srcRowLen;
    const h = ring.buf;
    for (let i = 0, t = 0; i < rowLen; i++) {
      let acc = (data[src + (index[t] as number)] as number) * (weight[t] as number);
      t++;
      for (let k = 1; k < ksize; k++, t++)
        acc += (data[src + (index[t] as number)] as number) * (weight[t] as number);
      h[o + i] = acc;
    }
  });
  const h = ring.buf;
  const out = new Float64Array(width * height * cn);
  const sy = new Int32Array(ksize);
  const rows = new Int32Array(ksize);
  for (let dy = 0; dy < height; dy++) {
    const o = dy * rowLen;
    sourceRows(yt, sh, dy, ksize, sy);
    for (let k = 0; k < ksize; k++) rows[k] = ring.row(sy[k] as number);
    const beta = yt.coef.subarray(dy * ksize, dy * ksize + ksize);
    for (let x = 0; x < rowLen; x++) {
      let acc = (h[(rows[0] as number) + x] as number) * (beta[0] as number);
      for (let k = 1; k < ksize; k++) acc += (h[(rows[k] as number) + x] as number) * (beta[k] as number);
      out[o + x] = acc;
    }
  }
  return out;
}

/**
 * resizeGeneric_: a horizontal pass per source row into a buffer (int for 8-bit, float for float32), then a
 * vertical pass over `ksize` buffered rows, with replicated borders.
 */
function resizeSeparable<D extends CvPixels>(
  img: CvImage<D>,
  width: number,
  height: number,
  mode: 'linear' | 'area' | 'cubic' | 'lanczos4',
  invX: number,
  invY: number,
): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const fixed = data instanceof Uint8Array;
  const ksize = mode === 'cubic' ? 4 : mode === 'lanczos4' ? 8 : 2;
  const xt = axisTable(sw, width, 1 / invX, invX, ksize, mode, true, fixed);
  const yt = axisTable(sh, height, 1 / invY, invY, ksize, mode, false, fixed);
  if (data instanceof Uint8Array) return separableU8(data, sw, sh, cn, width, height, ksize, xt, yt) as D;
  if (data instanceof Float64Array) return separableF64(data, sw, sh, cn, width, height, ksize, xt, yt) as D;
  return separableF32(data as Float32Array, sw, sh, cn, width, height, ksize, xt, yt) as D;
}

/** Throws unless `img` is a uint8/float32/float64 HWC image with 1..4 channels. */
function assertCvImage(img: CvImage, where: string): void {
  const { width: sw, height: sh, channels: cn, data } = img;
  if (!Number.isInteger(sw) || !Number.isInteger(sh) || sw < 1 || sh < 1) {
    throw new ImageError('image_invalid_argument', `${where}: width and height must be positive integers`);
  }
  if (!Number.isInteger(cn) || cn < 1 || cn > 4) {
    throw new ImageError('image_invalid_argument', `${where}: expected 1 to 4 channels, got ${cn}`);
  }
  const typed = data instanceof Uint8Array || data instanceof Float32Array || data instanceof Float64Array;
  if (!typed || data.length !== sw * sh * cn) {
    throw new ImageError(
      'image_invalid_argument',
      `${where}: data must be a Uint8Array, Float32Array or Float64Array of width * height * channels = ${sw * sh * cn}`,
    );
  }
}

/** hal::resize after the size is known: picks OpenCV's path from the inverse scales (dst / src per axis). */
function resizeWith<D extends CvPixels, C extends number>(
  img: CvImage<D, C>,
  width: number,
  height: number,
  invX: number,
  invY: number,
  interpolation: CvInterpolation,
): CvImage<D, C> {
  const done = (pixels: D): CvImage<D, C> => ({ width, height, channels: img.channels, data: pixels });
  if (width === img.width && height === img.height) return done(img.data.slice() as D);
  if (interpolation === 'nearest') return done(resizeNearest(img, width, height, invX, invY));
  const scaleX = 1 / invX;
  const scaleY = 1 / invY;
  const ix = roundEven(scaleX);
  const iy = roundEven(scaleY);
  const areaFast = Math.abs(scaleX - ix) < DBL_EPSILON && Math.abs(scaleY - iy) < DBL_EPSILON;
  let mode: Exclude<CvInterpolation, 'nearest'> = interpolation;
  // OpenCV: a 2x2 linear downscale is the same as (and runs as) the area fast path.
  if (mode === 'linear' && areaFast && ix === 2 && iy === 2) mode = 'area';
  if (mode === 'area' && scaleX >= 1 && scaleY >= 1) {
    return done(
      areaFast
        ? resizeAreaFast(img, width, height, ix, iy)
        : resizeAreaGeneral(img, width, height, scaleX, scaleY),
    );
  }
  if (mode !== 'linear' && mode !== 'area' && mode !== 'cubic' && mode !== 'lanczos4') {
    throw new ImageError(
      'image_invalid_argument',
      `cvResize: unknown interpolation ${String(interpolation)}`,
    );
  }
  return done(resizeSeparable(img, width, height, mode, invX, invY));
}

/**
 * cv2.resize(img, (width, height), interpolation=...) for uint8, float32 or float64 HWC images with 1..4 channels,
 * bit-identical to OpenCV 4's CPU implementation.
 */
export function cvResize<D extends CvPixels, C extends number>(
  img: CvImage<D, C>,
  width: number,
  height: number,
  interpolation: CvInterpolation,
): CvImage<D, C> {
  assertCvImage(img, 'cvResize');
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image_invalid_argument', `cvResize: cannot resize to ${width}x${height}`);
  }
  return resizeWith(img, width, height, width / img.width, height / img.height, interpolation);
}

/**
 * cv2.resize(img, None, fx=fx, fy=fy, interpolation=...): the size is round(width * fx) x round(height * fy)
 * (half to even), and OpenCV samples with fx/fy themselves rather than the ratio of the rounded sizes, so this
 * differs from cvResize to that size whenever the rounding moved a side.
 */
export function cvResizeBy<D extends CvPixels, C extends number>(
  img: CvImage<D, C>,
  fx: number,
  fy: number,
  interpolation: CvInterpolation,
): CvImage<D, C> {
  assertCvImage(img, 'cvResizeBy');
  const width = roundEven(img.width * fx);
  const height = roundEven(img.height * fy);
  if (!(fx > 0 && fy > 0) || !(width >= 1 && height >= 1) || !Number.isSafeInteger(width * height)) {
    throw new ImageError('image_invalid_argument', `cvResizeBy: cannot scale by ${fx}x${fy}`);
  }
  return resizeWith(img, width, height, fx, fy, interpolation);
}
