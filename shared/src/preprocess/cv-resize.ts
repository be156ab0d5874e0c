// cv2.resize (OpenCV 4.x, modules/imgproc/src/resize.cpp) reproduced bit for bit on the CPU path OpenCV takes
// without IPP/OpenCL: fixed-point coefficients (INTER_RESIZE_COEF_BITS = 11) for 8-bit linear/cubic/Lanczos,
// float coefficients for float32, INTER_AREA's integer-scale fast path and its general (fractional) path, and
// saturate_cast rounding (half to even). Float arithmetic is emulated with Math.fround at every step OpenCV
// rounds to float, in OpenCV's summation order.
import { ImageError } from './errors.ts';

/** Pixel storage cvResize accepts: 8-bit (CV_8U) or 32-bit float (CV_32F) samples. */
export type CvPixels = Uint8Array | Float32Array;

/** An HWC-interleaved image with 1..4 channels, as a cv2 numpy array of uint8 or float32. */
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

/** cvRound / lrint: nearest integer, ties to even. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** saturate_cast<uchar>(float or double). */
function satU8(v: number): number {
  const r = roundEven(v);
  return r < 0 ? 0 : Math.min(r, 255);
}

/** saturate_cast<short>(float). */
function satI16(v: number): number {
  const r = roundEven(v);
  return r < -32768 ? -32768 : Math.min(r, 32767);
}

/** interpolateCubic (A = -0.75), in float arithmetic. */
function cubicCoeffs(x: number, out: Float64Array): void {
  const A = -0.75;
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
function resizeNearest<D extends CvPixels>(img: CvImage<D>, width: number, height: number): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const ifx = 1 / (width / sw);
  const ify = 1 / (height / sh);
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

/** resizeAreaFast_: every output pixel averages an iscaleX x iscaleY block (integer scales). */
function resizeAreaFast<D extends CvPixels>(
  img: CvImage<D>,
  width: number,
  height: number,
  ix: number,
  iy: number,
): D {
  const { width: sw, channels: cn, data } = img;
  const isFloat = data instanceof Float32Array;
  const out = new (data.constructor as { new (n: number): D })(width * height * cn);
  const area = ix * iy;
  const scale = f(1 / area);
  const rowLen = sw * cn;
  // Block offsets in OpenCV's order (row by row), relative to the block's top-left sample.
  const ofs = new Int32Array(area);
  for (let sy = 0, k = 0; sy < iy; sy++) for (let sx = 0; sx < ix; sx++) ofs[k++] = sy * rowLen + sx * cn;
  const half = ix === 2 && iy === 2;
  // 8-bit 2x2 with 1/3/4 channels: (sum + 2) >> 2 (ResizeAreaFastVec); float 2x2 with 1/4 channels: SIMD order.
  const shift8 = !isFloat && half && cn !== 2;
  const simdF = isFloat && half && (cn === 1 || cn === 4);
  const dstRow = width * cn;
  for (let dy = 0; dy < height; dy++) {
    const base = dy * iy * rowLen;
    let o = dy * dstRow;
    for (let dx = 0; dx < dstRow; dx++, o++) {
      const c = dx % cn;
      const s = base + ((dx - c) / cn) * ix * cn + c;
      if (shift8) {
        out[o] =
          ((data[s] as number) +
            (data[s + cn] as number) +
            (data[s + rowLen] as number) +
            (data[s + rowLen + cn] as number) +
            2) >>
          2;
      } else if (simdF) {
        const a = f((data[s] as number) + (data[s + cn] as number));
        const b = f((data[s + rowLen] as number) + (data[s + rowLen + cn] as number));
        out[o] = f(f(a + b) * 0.25);
      } else if (!isFloat) {
        let sum = 0;
        for (let k = 0; k < area; k++) sum += data[s + (ofs[k] as number)] as number;
        out[o] = satU8(f(sum * scale));
      } else {
        let sum = 0;
        let k = 0;
        for (; k <= area - 4; k += 4) {
          const g = f(
            f(
              f((data[s + (ofs[k] as number)] as number) + (data[s + (ofs[k + 1] as number)] as number)) +
                (data[s + (ofs[k + 2] as number)] as number),
            ) + (data[s + (ofs[k + 3] as number)] as number),
          );
          sum = f(sum + g);
        }
        for (; k < area; k++) sum = f(sum + (data[s + (ofs[k] as number)] as number));
        out[o] = f(sum * scale);
      }
    }
  }
  return out;
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
  const isFloat = data instanceof Float32Array;
  const out = new (data.constructor as { new (n: number): D })(width * height * cn);
  const xt = areaTable(sw, width, scaleX);
  const yt = areaTable(sh, height, scaleY);
  const rowLen = width * cn;
  const buf = new Float64Array(rowLen);
  const sum = new Float64Array(rowLen);
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
        for (let c = 0; c < cn; c++)
          buf[dp + c] = f((buf[dp + c] as number) + f((data[sp + c] as number) * a));
      }
      bufRow = sy;
    }
    const first = j === 0 || yt.di[j - 1] !== dy;
    if (first) for (let i = 0; i < rowLen; i++) sum[i] = f(beta * (buf[i] as number));
    else for (let i = 0; i < rowLen; i++) sum[i] = f((sum[i] as number) + f(beta * (buf[i] as number)));
    const last = j === yt.si.length - 1 || yt.di[j + 1] !== dy;
    if (last) {
      const o = dy * rowLen;
      if (isFloat) for (let i = 0; i < rowLen; i++) out[o + i] = sum[i] as number;
      else for (let i = 0; i < rowLen; i++) out[o + i] = satU8(sum[i] as number);
    }
  }
  return out;
}

/** Horizontal taps flattened per output sample, tap-major: source sample index in the row and weight. */
interface Taps {
  ksize: number;
  index: Int32Array;
  weight: Float64Array;
}

/** Replicated-border taps for every output sample of a row (OpenCV clamps per channel the same way). */
function rowTaps(xt: AxisTable, sw: number, width: number, cn: number, ksize: number): Taps {
  const rowLen = width * cn;
  const back = ksize / 2 - 1; // taps start this many pixels before ofs
  const index = new Int32Array(rowLen * ksize);
  const weight = new Float64Array(rowLen * ksize);
  for (let dx = 0; dx < width; dx++) {
    const s0 = (xt.ofs[dx] as number) - back;
    for (let k = 0; k < ksize; k++) {
      const sx = Math.min(Math.max(s0 + k, 0), sw - 1);
      const w = xt.coef[dx * ksize + k] as number;
      for (let c = 0; c < cn; c++) {
        index[k * rowLen + dx * cn + c] = sx * cn + c;
        weight[k * rowLen + dx * cn + c] = w;
      }
    }
  }
  return { ksize, index, weight };
}

/** Buffered source rows for each output row: the `ksize` clamped source row indices, row-major. */
function columnRows(yt: AxisTable, sh: number, height: number, ksize: number): Int32Array {
  const back = ksize / 2 - 1;
  const rows = new Int32Array(height * ksize);
  for (let dy = 0; dy < height; dy++) {
    const sy0 = (yt.ofs[dy] as number) - back;
    for (let k = 0; k < ksize; k++) rows[dy * ksize + k] = Math.min(Math.max(sy0 + k, 0), sh - 1);
  }
  return rows;
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
  const rows = columnRows(yt, sh, height, ksize);
  const hbuf = new Int32Array(sh * rowLen);
  const done = new Uint8Array(sh);
  const hrow = (sy: number): number => {
    const o = sy * rowLen;
    if (done[sy]) return o;
    done[sy] = 1;
    const src = sy * srcRowLen;
    for (let i = 0; i < rowLen; i++)
      hbuf[o + i] = (data[src + (index[i] as number)] as number) * (weight[i] as number);
    for (let k = 1; k < ksize; k++) {
      const t = k * rowLen;
      for (let i = 0; i < rowLen; i++) {
        hbuf[o + i] =
          (hbuf[o + i] as number) +
          (data[src + (index[t + i] as number)] as number) * (weight[t + i] as number);
      }
    }
    return o;
  };
  const out = new Uint8Array(width * height * cn);
  const acc = new Float64Array(rowLen);
  const acc32 = new Float32Array(rowLen);
  const simdEnd = ksize === 4 ? rowLen & ~7 : 0;
  for (let dy = 0; dy < height; dy++) {
    const o = dy * rowLen;
    const r = new Int32Array(ksize);
    for (let k = 0; k < ksize; k++) r[k] = hrow(rows[dy * ksize + k] as number);
    const beta = yt.coef.subarray(dy * ksize, dy * ksize + ksize);
    if (ksize === 2) {
      // VResizeLinear<uchar>: each product scaled down before the sum, as the SIMD code does.
      const r0 = r[0] as number;
      const r1 = r[1] as number;
      const b0 = beta[0] as number;
      const b1 = beta[1] as number;
      for (let x = 0; x < rowLen; x++) {
        const v =
          (((b0 * ((hbuf[r0 + x] as number) >> 4)) >> 16) +
            ((b1 * ((hbuf[r1 + x] as number) >> 4)) >> 16) +
            2) >>
          2;
        out[o + x] = v & 255;
      }
      continue;
    }
    if (simdEnd > 0) {
      // VResizeCubicVec_32s8u: whole groups of 8 in float, coefficients pre-scaled by 2^-22, last tap first,
      // rounded half to even. (Row values stay below 2^24, so converting them to float is exact.)
      const r3 = r[3] as number;
      const b3 = f((beta[3] as number) * 2 ** -22);
      for (let x = 0; x < simdEnd; x++) acc32[x] = (hbuf[r3 + x] as number) * b3;
      for (let k = 2; k >= 0; k--) {
        const rk = r[k] as number;
        const bk = f((beta[k] as number) * 2 ** -22);
        for (let x = 0; x < simdEnd; x++) acc32[x] = (acc32[x] as number) + f((hbuf[rk + x] as number) * bk);
      }
      for (let x = 0; x < simdEnd; x++) out[o + x] = satU8(acc32[x] as number);
    }
    // FixedPtCast<int, uchar, 22>: the exact integer sum, rounded (x + 2^21) >> 22, then saturated.
    const r0 = r[0] as number;
    const b0 = beta[0] as number;
    for (let x = simdEnd; x < rowLen; x++) acc[x] = (hbuf[r0 + x] as number) * b0;
    for (let k = 1; k < ksize; k++) {
      const rk = r[k] as number;
      const bk = beta[k] as number;
      for (let x = simdEnd; x < rowLen; x++) acc[x] = (acc[x] as number) + (hbuf[rk + x] as number) * bk;
    }
    for (let x = simdEnd; x < rowLen; x++) {
      const v = Math.floor(((acc[x] as number) + 2097152) / 4194304);
      out[o + x] = v < 0 ? 0 : Math.min(v, 255);
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
  const rows = columnRows(yt, sh, height, ksize);
  // Float32Array stores round to float: a store of (float + float) is the float sum, and a store of
  // (float * float) is the float product; only products that are then added need an explicit fround.
  const hbuf = new Float32Array(sh * rowLen);
  const done = new Uint8Array(sh);
  const hrow = (sy: number): number => {
    const o = sy * rowLen;
    if (done[sy]) return o;
    done[sy] = 1;
    const src = sy * srcRowLen;
    for (let i = 0; i < rowLen; i++)
      hbuf[o + i] = (data[src + (index[i] as number)] as number) * (weight[i] as number);
    for (let k = 1; k < ksize; k++) {
      const t = k * rowLen;
      for (let i = 0; i < rowLen; i++) {
        hbuf[o + i] =
          (hbuf[o + i] as number) +
          f((data[src + (index[t + i] as number)] as number) * (weight[t + i] as number));
      }
    }
    return o;
  };
  const out = new Float32Array(width * height * cn);
  // VResizeCubicVec_32f / VResizeLanczos4Vec_32f: 4-lane SIMD over whole groups of 4, accumulating from the
  // last tap back to the first (v_muladd nesting); the rest goes through the scalar loop, first tap to last.
  // (Linear's SIMD and scalar orders agree.)
  const simdEnd = ksize === 2 ? 0 : rowLen & ~3;
  const r = new Int32Array(ksize);
  for (let dy = 0; dy < height; dy++) {
    const o = dy * rowLen;
    for (let k = 0; k < ksize; k++) r[k] = hrow(rows[dy * ksize + k] as number);
    const beta = yt.coef.subarray(dy * ksize, dy * ksize + ksize);
    if (simdEnd > 0) {
      const rl = r[ksize - 1] as number;
      const bl = beta[ksize - 1] as number;
      for (let x = 0; x < simdEnd; x++) out[o + x] = (hbuf[rl + x] as number) * bl;
      for (let k = ksize - 2; k >= 0; k--) {
        const rk = r[k] as number;
        const bk = beta[k] as number;
        for (let x = 0; x < simdEnd; x++)
          out[o + x] = (out[o + x] as number) + f((hbuf[rk + x] as number) * bk);
      }
    }
    const r0 = r[0] as number;
    const b0 = beta[0] as number;
    for (let x = simdEnd; x < rowLen; x++) out[o + x] = (hbuf[r0 + x] as number) * b0;
    for (let k = 1; k < ksize; k++) {
      const rk = r[k] as number;
      const bk = beta[k] as number;
      for (let x = simdEnd; x < rowLen; x++)
        out[o + x] = (out[o + x] as number) + f((hbuf[rk + x] as number) * bk);
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
  scaleX: number,
  scaleY: number,
): D {
  const { width: sw, height: sh, channels: cn, data } = img;
  const fixed = data instanceof Uint8Array;
  const ksize = mode === 'cubic' ? 4 : mode === 'lanczos4' ? 8 : 2;
  const xt = axisTable(sw, width, scaleX, width / sw, ksize, mode, true, fixed);
  const yt = axisTable(sh, height, scaleY, height / sh, ksize, mode, false, fixed);
  return (
    data instanceof Uint8Array
      ? separableU8(data, sw, sh, cn, width, height, ksize, xt, yt)
      : separableF32(data as Float32Array, sw, sh, cn, width, height, ksize, xt, yt)
  ) as D;
}

/**
 * cv2.resize(img, (width, height), interpolation=...) for uint8 or float32 HWC images with 1..4 channels,
 * bit-identical to OpenCV 4's CPU implementation. (fx/fy calls are the same as passing the rounded size.)
 */
export function cvResize<D extends CvPixels, C extends number>(
  img: CvImage<D, C>,
  width: number,
  height: number,
  interpolation: CvInterpolation,
): CvImage<D, C> {
  const { width: sw, height: sh, channels: cn, data } = img;
  if (!Number.isInteger(sw) || !Number.isInteger(sh) || sw < 1 || sh < 1) {
    throw new ImageError('image_invalid_argument', 'cvResize: width and height must be positive integers');
  }
  if (!Number.isInteger(cn) || cn < 1 || cn > 4) {
    throw new ImageError('image_invalid_argument', `cvResize: expected 1 to 4 channels, got ${cn}`);
  }
  if (!(data instanceof Uint8Array || data instanceof Float32Array) || data.length !== sw * sh * cn) {
    throw new ImageError(
      'image_invalid_argument',
      `cvResize: data must be a Uint8Array or Float32Array of width * height * channels = ${sw * sh * cn}`,
    );
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image_invalid_argument', `cvResize: cannot resize to ${width}x${height}`);
  }
  const done = (pixels: D): CvImage<D, C> => ({ width, height, channels: cn, data: pixels });
  if (width === sw && height === sh) return done(data.slice() as D);
  if (interpolation === 'nearest') return done(resizeNearest(img, width, height));

  const invX = width / sw;
  const invY = height / sh;
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
  return done(resizeSeparable(img, width, height, mode, scaleX, scaleY));
}
