import { hwc3 } from './convert.ts';
import { ImageError } from './errors.ts';
import type { GrayImage, Image8 } from './image.ts';
import { assertImage } from './validate.ts';

/** Hysteresis thresholds on the L1 gradient magnitude (|dx| + |dy| of the 3x3 Sobel), as cv2.Canny takes them. */
export interface CannyThresholds {
  low: number;
  high: number;
}

// tan(22.5 deg) in Q15, the fixed-point slope OpenCV's non-maximum suppression uses to pick a direction.
const TAN_22_5_Q15 = 13573;
const Q15_SHIFT = 15;

// Values of the per-pixel state map, as in OpenCV: 0 = may be an edge (weak), 1 = cannot be an edge, 2 = edge.
const WEAK = 0;
const NOT_EDGE = 1;
const EDGE = 2;

/**
 * Edge map equal to `cv2.Canny(img, low, high)` (aperture 3, L1 gradient): 3x3 Sobel per channel with replicated
 * borders, the channel with the largest |dx| + |dy| wins (first channel on ties), OpenCV's fixed-point
 * non-maximum suppression, hysteresis on 8-connected neighbours. Output is 0/255, one channel.
 * RGBA input is first composited over white (HWC3), as the original apps do before calling Canny.
 *
 * Hand-written: no JS/wasm library reproduces OpenCV's exact Canny, and the edge needs it in a few ms.
 */
export function canny(img: Image8, thresholds: CannyThresholds): GrayImage {
  assertImage(img, [1, 3, 4], 'canny');
  let { low, high } = thresholds;
  if (!Number.isFinite(low) || !Number.isFinite(high) || low < 0 || high < 0) {
    throw new ImageError(
      'image_invalid_argument',
      `canny: thresholds must be finite and >= 0, got ${low}/${high}`,
    );
  }
  if (low > high) [low, high] = [high, low];
  const lowThreshold = Math.floor(low);
  const highThreshold = Math.floor(high);

  const source = img.channels === 4 ? hwc3(img) : img;
  const { width, height, channels, data } = source;

  // Rows are processed as OpenCV does: the gradient of row y is computed into a ring of three magnitude rows,
  // then row y - 1 is suppressed, so the working set stays in cache. Magnitude rows carry a zero at both ends
  // (OpenCV treats magnitude outside the image as 0) and slot 3 stays all zero for the rows above and below.
  const stride = width + 2;
  const magnitude = new Int32Array(4 * stride);
  const gradX = new Int32Array(2 * width);
  const gradY = new Int32Array(2 * width);
  const ZERO_ROW = 3 * stride;

  // The state map has a one-pixel NOT_EDGE frame so hysteresis needs no bounds checks.
  const state = new Uint8Array(stride * (height + 2));
  state.fill(NOT_EDGE);
  let stack: Int32Array = new Int32Array(Math.max(64, width * 4));
  let stackSize = 0;
  const out = new Uint8Array(width * height);

  for (let y = 0; y <= height; y++) {
    if (y < height) {
      rowGradient(
        data,
        width,
        height,
        channels,
        y,
        magnitude,
        (y % 3) * stride + 1,
        gradX,
        gradY,
        (y & 1) * width,
      );
    }
    if (y === 0) continue;
    // Suppress row r = y - 1: its neighbours above and below are magnitude rows r - 1 and r + 1.
    const r = y - 1;
    const here = (r % 3) * stride + 1;
    const above = r > 0 ? ((r + 2) % 3) * stride + 1 : ZERO_ROW + 1;
    const below = y < height ? (y % 3) * stride + 1 : ZERO_ROW + 1;
    const gradBase = (r & 1) * width;
    const stateBase = (r + 1) * stride + 1;
    const outBase = r * width;
    for (let x = 0; x < width; x++) {
      const m = magnitude[here + x] as number;
      if (m <= lowThreshold) continue; // state stays NOT_EDGE
      const gx = gradX[gradBase + x] as number;
      const gy = gradY[gradBase + x] as number;
      const ax = gx < 0 ? -gx : gx;
      const ayQ15 = (gy < 0 ? -gy : gy) << Q15_SHIFT;
      const tan22x = ax * TAN_22_5_Q15;
      let isPeak: boolean;
      if (ayQ15 < tan22x) {
        // Mostly horizontal gradient: compare left and right.
        isPeak = m > (magnitude[here + x - 1] as number) && m >= (magnitude[here + x + 1] as number);
      } else if (ayQ15 > tan22x + (ax << (Q15_SHIFT + 1))) {
        // Mostly vertical gradient (beyond tan 67.5 = tan 22.5 + 2): compare above and below.
        isPeak = m > (magnitude[above + x] as number) && m >= (magnitude[below + x] as number);
      } else {
        // Diagonal: the direction depends on whether dx and dy have the same sign.
        const s = (gx ^ gy) < 0 ? -1 : 1;
        isPeak = m > (magnitude[above + x - s] as number) && m > (magnitude[below + x + s] as number);
      }
      if (!isPeak) continue;
      if (m > highThreshold) {
        state[stateBase + x] = EDGE;
        out[outBase + x] = 255;
        if (stackSize === stack.length) stack = grow(stack);
        stack[stackSize++] = stateBase + x;
      } else {
        state[stateBase + x] = WEAK;
      }
    }
  }

  // Hysteresis: grow edges into 8-connected weak pixels. The frame is NOT_EDGE, so no bounds checks.
  // A state index n = (row + 1) * stride + 1 + x is output index row * width + x = n - stride - 1 - 2 * row.
  const neighbours = Int32Array.of(-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1);
  while (stackSize > 0) {
    const at = stack[--stackSize] as number;
    if (stackSize + 8 > stack.length) stack = grow(stack);
    for (let k = 0; k < 8; k++) {
      const n = at + (neighbours[k] as number);
      if (state[n] !== WEAK) continue;
      state[n] = EDGE;
      stack[stackSize++] = n;
      out[n - stride - 1 - 2 * (((n / stride) | 0) - 1)] = 255;
    }
  }
  return { width, height, channels: 1, data: out };
}

/** Doubles the hysteresis stack (rarely needed: it starts at four rows' worth of pixels). */
function grow(stack: Int32Array): Int32Array {
  const bigger = new Int32Array(stack.length * 2);
  bigger.set(stack);
  return bigger;
}

/**
 * 3x3 Sobel of row `y` (dx = [-1 0 1; -2 0 2; -1 0 1], dy its transpose) with replicated borders on every
 * channel; writes |dx| + |dy| of the channel with the largest one (the first on ties) to `magnitude` at `magAt`
 * and its dx, dy to `gradX`/`gradY` at `gradAt`. Separable and sliding: per column, s = above + 2 * here + below
 * and d = below - above; dx = s[x + 1] - s[x - 1], dy = d[x - 1] + 2 * d[x] + d[x + 1], with s and d of the
 * previous two columns kept in locals so each source byte is read once. The channel choice is branch-free
 * (sign masks): on photos it is a coin toss a branch predictor would lose.
 */
function rowGradient(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  y: number,
  magnitude: Int32Array,
  magAt: number,
  gradX: Int32Array,
  gradY: Int32Array,
  gradAt: number,
): void {
  const rowLength = width * channels;
  const above = (y > 0 ? y - 1 : 0) * rowLength;
  const here = y * rowLength;
  const below = (y < height - 1 ? y + 1 : y) * rowLength;
  const last = rowLength - channels;
  if (channels === 1) {
    let a = data[above] as number;
    let b = data[below] as number;
    let sPrev = a + 2 * (data[here] as number) + b;
    let dPrev = b - a;
    let sHere = sPrev;
    let dHere = dPrev;
    for (let x = 0; x < width; x++) {
      const n = x < last ? x + 1 : last;
      a = data[above + n] as number;
      b = data[below + n] as number;
      const sNext = a + 2 * (data[here + n] as number) + b;
      const dNext = b - a;
      const dx = sNext - sPrev;
      const dy = dPrev + 2 * dHere + dNext;
      const sx = dx >> 31;
      const sy = dy >> 31;
      magnitude[magAt + x] = (dx ^ sx) - sx + ((dy ^ sy) - sy);
      gradX[gradAt + x] = dx;
      gradY[gradAt + x] = dy;
      sPrev = sHere;
      sHere = sNext;
      dPrev = dHere;
      dHere = dNext;
    }
    return;
  }
  // Three channels (RGBA was composited to RGB before).
  const a0 = data[above] as number;
  const b0 = data[below] as number;
  const a1 = data[above + 1] as number;
  const b1 = data[below + 1] as number;
  const a2 = data[above + 2] as number;
  const b2 = data[below + 2] as number;
  let s0p = a0 + 2 * (data[here] as number) + b0;
  let s1p = a1 + 2 * (data[here + 1] as number) + b1;
  let s2p = a2 + 2 * (data[here + 2] as number) + b2;
  let d0p = b0 - a0;
  let d1p = b1 - a1;
  let d2p = b2 - a2;
  let s0h = s0p;
  let s1h = s1p;
  let s2h = s2p;
  let d0h = d0p;
  let d1h = d1p;
  let d2h = d2p;
  // Two columns per step: columns p (x - 1), h (x), then a (x + 1) and b (x + 2) are loaded, pixels x and x + 1
  // emitted, and a, b become the next step's p, h (the right border replicates the last column).
  let s0a = 0;
  let s1a = 0;
  let s2a = 0;
  let d0a = 0;
  let d1a = 0;
  let d2a = 0;
  let s0b = 0;
  let s1b = 0;
  let s2b = 0;
  let d0b = 0;
  let d1b = 0;
  let d2b = 0;
  let x = 0;
  for (let j = 3; x + 1 < width; x += 2, j += 6) {
    {
      const n = j;
      const a0 = data[above + n] as number;
      const b0 = data[below + n] as number;
      const a1 = data[above + n + 1] as number;
      const b1 = data[below + n + 1] as number;
      const a2 = data[above + n + 2] as number;
      const b2 = data[below + n + 2] as number;
      s0a = a0 + 2 * (data[here + n] as number) + b0;
      s1a = a1 + 2 * (data[here + n + 1] as number) + b1;
      s2a = a2 + 2 * (data[here + n + 2] as number) + b2;
      d0a = b0 - a0;
      d1a = b1 - a1;
      d2a = b2 - a2;
    }
    {
      const n = Math.min(j + 3, last);
      const a0 = data[above + n] as number;
      const b0 = data[below + n] as number;
      const a1 = data[above + n + 1] as number;
      const b1 = data[below + n + 1] as number;
      const a2 = data[above + n + 2] as number;
      const b2 = data[below + n + 2] as number;
      s0b = a0 + 2 * (data[here + n] as number) + b0;
      s1b = a1 + 2 * (data[here + n + 1] as number) + b1;
      s2b = a2 + 2 * (data[here + n + 2] as number) + b2;
      d0b = b0 - a0;
      d1b = b1 - a1;
      d2b = b2 - a2;
    }
    {
      let dx = s0a - s0p;
      let dy = d0p + 2 * d0h + d0a;
      let sx = dx >> 31;
      let sy = dy >> 31;
      let m = (dx ^ sx) - sx + ((dy ^ sy) - sy);
      const dx1 = s1a - s1p;
      const dy1 = d1p + 2 * d1h + d1a;
      sx = dx1 >> 31;
      sy = dy1 >> 31;
      const m1 = (dx1 ^ sx) - sx + ((dy1 ^ sy) - sy);
      let take = (m - m1) >> 31; // -1 when m1 > m: channel 1 wins
      m ^= (m ^ m1) & take;
      dx ^= (dx ^ dx1) & take;
      dy ^= (dy ^ dy1) & take;
      const dx2 = s2a - s2p;
      const dy2 = d2p + 2 * d2h + d2a;
      sx = dx2 >> 31;
      sy = dy2 >> 31;
      const m2 = (dx2 ^ sx) - sx + ((dy2 ^ sy) - sy);
      take = (m - m2) >> 31;
      magnitude[magAt + x] = m ^ ((m ^ m2) & take);
      gradX[gradAt + x] = dx ^ ((dx ^ dx2) & take);
      gradY[gradAt + x] = dy ^ ((dy ^ dy2) & take);
    }
    {
      let dx = s0b - s0h;
      let dy = d0h + 2 * d0a + d0b;
      let sx = dx >> 31;
      let sy = dy >> 31;
      let m = (dx ^ sx) - sx + ((dy ^ sy) - sy);
      const dx1 = s1b - s1h;
      const dy1 = d1h + 2 * d1a + d1b;
      sx = dx1 >> 31;
      sy = dy1 >> 31;
      const m1 = (dx1 ^ sx) - sx + ((dy1 ^ sy) - sy);
      let take = (m - m1) >> 31; // -1 when m1 > m: channel 1 wins
      m ^= (m ^ m1) & take;
      dx ^= (dx ^ dx1) & take;
      dy ^= (dy ^ dy1) & take;
      const dx2 = s2b - s2h;
      const dy2 = d2h + 2 * d2a + d2b;
      sx = dx2 >> 31;
      sy = dy2 >> 31;
      const m2 = (dx2 ^ sx) - sx + ((dy2 ^ sy) - sy);
      take = (m - m2) >> 31;
      magnitude[magAt + x + 1] = m ^ ((m ^ m2) & take);
      gradX[gradAt + x + 1] = dx ^ ((dx ^ dx2) & take);
      gradY[gradAt + x + 1] = dy ^ ((dy ^ dy2) & take);
    }
    s0p = s0a;
    s1p = s1a;
    s2p = s2a;
    d0p = d0a;
    d1p = d1a;
    d2p = d2a;
    s0h = s0b;
    s1h = s1b;
    s2h = s2b;
    d0h = d0b;
    d1h = d1b;
    d2h = d2b;
  }
  if (x < width) {
    // Odd width: the last pixel's right neighbour is itself.
    {
      let dx = s0h - s0p;
      let dy = d0p + 2 * d0h + d0h;
      let sx = dx >> 31;
      let sy = dy >> 31;
      let m = (dx ^ sx) - sx + ((dy ^ sy) - sy);
      const dx1 = s1h - s1p;
      const dy1 = d1p + 2 * d1h + d1h;
      sx = dx1 >> 31;
      sy = dy1 >> 31;
      const m1 = (dx1 ^ sx) - sx + ((dy1 ^ sy) - sy);
      let take = (m - m1) >> 31; // -1 when m1 > m: channel 1 wins
      m ^= (m ^ m1) & take;
      dx ^= (dx ^ dx1) & take;
      dy ^= (dy ^ dy1) & take;
      const dx2 = s2h - s2p;
      const dy2 = d2p + 2 * d2h + d2h;
      sx = dx2 >> 31;
      sy = dy2 >> 31;
      const m2 = (dx2 ^ sx) - sx + ((dy2 ^ sy) - sy);
      take = (m - m2) >> 31;
      magnitude[magAt + x] = m ^ ((m ^ m2) & take);
      gradX[gradAt + x] = dx ^ ((dx ^ dx2) & take);
      gradY[gradAt + x] = dy ^ ((dy ^ dy2) & take);
    }
  }
}
