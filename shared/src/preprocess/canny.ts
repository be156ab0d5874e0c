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

  // Magnitude and state map carry a one-pixel frame so neighbour reads never need bounds checks;
  // the magnitude frame is 0 (OpenCV treats magnitude outside the image as 0).
  const stride = width + 2;
  const magnitude = new Int32Array(stride * (height + 2));
  const gradX = new Int16Array(width * height);
  const gradY = new Int16Array(width * height);
  computeGradients(data, width, height, channels, magnitude, gradX, gradY);

  const state = new Uint8Array(stride * (height + 2));
  state.fill(NOT_EDGE);
  const stack = new Int32Array(width * height);
  let stackSize = 0;

  for (let y = 0; y < height; y++) {
    const rowBase = (y + 1) * stride + 1;
    const gradBase = y * width;
    for (let x = 0; x < width; x++) {
      const at = rowBase + x;
      const m = magnitude[at] as number;
      if (m <= lowThreshold) continue; // state stays NOT_EDGE
      const gx = gradX[gradBase + x] as number;
      const gy = gradY[gradBase + x] as number;
      const ax = gx < 0 ? -gx : gx;
      const ayQ15 = (gy < 0 ? -gy : gy) << Q15_SHIFT;
      const tan22x = ax * TAN_22_5_Q15;
      let isPeak: boolean;
      if (ayQ15 < tan22x) {
        // Mostly horizontal gradient: compare left and right.
        isPeak = m > (magnitude[at - 1] as number) && m >= (magnitude[at + 1] as number);
      } else {
        const tan67x = tan22x + (ax << (Q15_SHIFT + 1));
        if (ayQ15 > tan67x) {
          // Mostly vertical gradient: compare above and below.
          isPeak = m > (magnitude[at - stride] as number) && m >= (magnitude[at + stride] as number);
        } else {
          // Diagonal: the direction depends on whether dx and dy have the same sign.
          const s = (gx ^ gy) < 0 ? -1 : 1;
          isPeak = m > (magnitude[at - stride - s] as number) && m > (magnitude[at + stride + s] as number);
        }
      }
      if (!isPeak) continue;
      if (m > highThreshold) {
        state[at] = EDGE;
        stack[stackSize++] = at;
      } else {
        state[at] = WEAK;
      }
    }
  }

  // Hysteresis: grow edges into 8-connected weak pixels. The frame is NOT_EDGE, so no bounds checks.
  const neighbours = Int32Array.of(-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1);
  while (stackSize > 0) {
    const at = stack[--stackSize] as number;
    for (let k = 0; k < 8; k++) {
      const n = at + (neighbours[k] as number);
      if (state[n] === WEAK) {
        state[n] = EDGE;
        stack[stackSize++] = n;
      }
    }
  }

  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const rowBase = (y + 1) * stride + 1;
    const outBase = y * width;
    for (let x = 0; x < width; x++) {
      if (state[rowBase + x] === EDGE) out[outBase + x] = 255;
    }
  }
  return { width, height, channels: 1, data: out };
}

/**
 * 3x3 Sobel (dx = [-1 0 1; -2 0 2; -1 0 1], dy its transpose) with replicated borders on every channel;
 * keeps dx, dy and |dx| + |dy| of the channel with the largest magnitude (the first one on ties).
 * Separable: per row, `smoothed` = above + 2 * here + below and `diff` = below - above, each padded by one
 * replicated pixel on both sides; then dx = smoothed[x + 1] - smoothed[x - 1], dy = diff[x - 1] + 2 * diff[x] + diff[x + 1].
 */
function computeGradients(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  magnitude: Int32Array,
  gradX: Int16Array,
  gradY: Int16Array,
): void {
  const rowLength = width * channels;
  const stride = width + 2;
  const smoothed = new Int32Array(rowLength + 2 * channels);
  const diff = new Int32Array(rowLength + 2 * channels);
  for (let y = 0; y < height; y++) {
    const above = (y > 0 ? y - 1 : 0) * rowLength;
    const here = y * rowLength;
    const below = (y < height - 1 ? y + 1 : y) * rowLength;
    for (let i = 0; i < rowLength; i++) {
      const a = data[above + i] as number;
      const b = data[below + i] as number;
      smoothed[channels + i] = a + 2 * (data[here + i] as number) + b;
      diff[channels + i] = b - a;
    }
    for (let c = 0; c < channels; c++) {
      smoothed[c] = smoothed[channels + c] as number;
      diff[c] = diff[channels + c] as number;
      smoothed[channels + rowLength + c] = smoothed[rowLength + c] as number;
      diff[channels + rowLength + c] = diff[rowLength + c] as number;
    }
    const magBase = (y + 1) * stride + 1;
    const gradBase = y * width;
    if (channels === 3) {
      for (let x = 0, j = 3; x < width; x++, j += 3) {
        let dx = (smoothed[j + 3] as number) - (smoothed[j - 3] as number);
        let dy = (diff[j - 3] as number) + 2 * (diff[j] as number) + (diff[j + 3] as number);
        let m = (dx < 0 ? -dx : dx) + (dy < 0 ? -dy : dy);
        const dx1 = (smoothed[j + 4] as number) - (smoothed[j - 2] as number);
        const dy1 = (diff[j - 2] as number) + 2 * (diff[j + 1] as number) + (diff[j + 4] as number);
        const m1 = (dx1 < 0 ? -dx1 : dx1) + (dy1 < 0 ? -dy1 : dy1);
        if (m1 > m) {
          m = m1;
          dx = dx1;
          dy = dy1;
        }
        const dx2 = (smoothed[j + 5] as number) - (smoothed[j - 1] as number);
        const dy2 = (diff[j - 1] as number) + 2 * (diff[j + 2] as number) + (diff[j + 5] as number);
        const m2 = (dx2 < 0 ? -dx2 : dx2) + (dy2 < 0 ? -dy2 : dy2);
        if (m2 > m) {
          m = m2;
          dx = dx2;
          dy = dy2;
        }
        magnitude[magBase + x] = m;
        gradX[gradBase + x] = dx;
        gradY[gradBase + x] = dy;
      }
      continue;
    }
    for (let x = 0, j = channels; x < width; x++, j += channels) {
      let bestMag = -1;
      let bestDx = 0;
      let bestDy = 0;
      for (let c = 0; c < channels; c++) {
        const k = j + c;
        const dx = (smoothed[k + channels] as number) - (smoothed[k - channels] as number);
        const dy = (diff[k - channels] as number) + 2 * (diff[k] as number) + (diff[k + channels] as number);
        const m = (dx < 0 ? -dx : dx) + (dy < 0 ? -dy : dy);
        if (m > bestMag) {
          bestMag = m;
          bestDx = dx;
          bestDy = dy;
        }
      }
      magnitude[magBase + x] = bestMag;
      gradX[gradBase + x] = bestDx;
      gradY[gradBase + x] = bestDy;
    }
  }
}
