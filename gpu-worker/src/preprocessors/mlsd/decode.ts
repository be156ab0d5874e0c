import { drawLine } from './cv-line.ts';

/** A segment in image pixels: [x_start, y_start, x_end, y_end] as pred_lines returns it. */
export type Segment = [number, number, number, number];

/** Thresholds and geometry of {@link decodeLines}. */
export interface DecodeOptions {
  /** score_thr (the app's value_threshold): centre heat must exceed it. */
  scoreThreshold: number;
  /** dist_thr (the app's distance_threshold): displacement length, in output cells, must exceed it. */
  distanceThreshold: number;
  /** Image height / network input height (h_ratio; 1 in ControlNet 1.1, which feeds the image at its own size). */
  heightRatio?: number;
  /** Image width / network input width (w_ratio). */
  widthRatio?: number;
}

/** Candidates pred_lines keeps (deccode_output_score_and_ptss's topk_n). */
const TOP_K = 200;

/** float32 sigmoid, as torch.sigmoid on a float32 tensor (to the last bit but for rare 1-ulp cases). */
function sigmoid32(x: number): number {
  return Math.fround(1 / (1 + Math.exp(-x)));
}

/**
 * M-LSD's pred_lines after the network: sigmoid of the centre map, 3x3 max-pool NMS (keep cells equal to their
 * window max), the top 200 cells (ties: lower index first), then segments whose score and endpoint distance
 * (float32, as numpy computes it) pass the thresholds, scaled by 2 (the output is half resolution) and the ratios.
 * `output` is the network's NHWC data [h, w, channels] (channel 0 centre logit, 1..4 displacements). Undefined
 * when the map has fewer than 200 cells: torch.topk raises there and MLSDdetector's try/except returns black.
 */
export function decodeLines(
  output: Float32Array,
  h: number,
  w: number,
  channels: number,
  options: DecodeOptions,
): Segment[] | undefined {
  const cells = h * w;
  if (cells < TOP_K) return undefined;
  const heat = new Float32Array(cells);
  for (let i = 0; i < cells; i++) heat[i] = sigmoid32(output[i * channels]!);
  const kept = new Float32Array(cells);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const value = heat[y * w + x]!;
      let max = -Infinity;
      for (let yy = Math.max(0, y - 1); yy <= Math.min(h - 1, y + 1); yy++) {
        for (let xx = Math.max(0, x - 1); xx <= Math.min(w - 1, x + 1); xx++)
          max = Math.max(max, heat[yy * w + xx]!);
      }
      kept[y * w + x] = max === value ? value : 0;
    }
  }
  const order = Array.from({ length: cells }, (_, i) => i);
  order.sort((a, b) => kept[b]! - kept[a]! || a - b);
  const heightRatio = options.heightRatio ?? 1;
  const widthRatio = options.widthRatio ?? 1;
  const segments: Segment[] = [];
  for (const index of order.slice(0, TOP_K)) {
    const score = kept[index]!;
    const y = Math.floor(index / w);
    const x = index % w;
    const base = index * channels;
    const [sx, sy, ex, ey] = [output[base + 1]!, output[base + 2]!, output[base + 3]!, output[base + 4]!];
    // dist_map = sqrt(sum((start - end) ** 2)) on float32 arrays.
    const ddx = Math.fround(sx - ex);
    const ddy = Math.fround(sy - ey);
    const distance = Math.fround(Math.sqrt(Math.fround(Math.fround(ddx * ddx) + Math.fround(ddy * ddy))));
    if (score > options.scoreThreshold && distance > options.distanceThreshold) {
      // int64 cell + float32 displacement is float64 in numpy; the products are exact in float64 here too.
      segments.push([
        2 * (x + sx) * widthRatio,
        2 * (y + sy) * heightRatio,
        2 * (x + ex) * widthRatio,
        2 * (y + ey) * heightRatio,
      ]);
    }
  }
  return segments;
}

/**
 * MLSDdetector's drawing: each segment's coordinates truncated toward zero (Python int()) and drawn with
 * cv2.line (white, thickness 1) on a black one-channel canvas of the image's size. A non-finite or out-of-int32
 * coordinate would raise in the original, whose try/except then keeps what was drawn so far: so does this.
 */
export function drawSegments(
  segments: readonly Segment[] | undefined,
  width: number,
  height: number,
): Uint8Array {
  const plane = { width, height, data: new Uint8Array(width * height) };
  for (const segment of segments ?? []) {
    const ints = segment.map(Math.trunc);
    if (!ints.every((v) => Number.isFinite(v) && Math.abs(v) < 2 ** 31)) break;
    drawLine(plane, ints[0]!, ints[1]!, ints[2]!, ints[3]!);
  }
  return plane.data;
}
