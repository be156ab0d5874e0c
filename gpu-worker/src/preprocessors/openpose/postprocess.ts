/** The OpenPose post-processing of annotator/openpose (body.py, hand.py, face.py, util.py), in float64 like numpy. */
import { LIMB_SEQ } from './draw.ts';
import { gaussianFilterSigma3 } from './filters.ts';

/** PAF channel pairs (x, y) of each limb, offset by 19 as in body.py's mapIdx. */
const MAP_IDX: readonly (readonly [number, number])[] = [
  [31, 32],
  [39, 40],
  [33, 34],
  [35, 36],
  [41, 42],
  [43, 44],
  [19, 20],
  [21, 22],
  [23, 24],
  [25, 26],
  [27, 28],
  [29, 30],
  [47, 48],
  [49, 50],
  [53, 54],
  [51, 52],
  [55, 56],
  [37, 38],
  [45, 46],
];

/** Body detection result as Body.__call__ returns it: candidate rows (x, y, score, id), subset rows of 20. */
export interface BodyResult {
  candidate: number[][];
  subset: number[][];
}

/** Python's round() on a float: half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(a, b, num) for num > 1: i * ((b - a) / (num - 1)) + a, last element exactly b. */
function linspace(a: number, b: number, num: number): number[] {
  const step = (b - a) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(step === 0 ? (i / (num - 1)) * (b - a) + a : i * step + a);
  out[num - 1] = b;
  return out;
}

/**
 * Body.__call__ after the network: peaks of the Gaussian-smoothed heatmaps (threshold 0.1), PAF line integrals
 * (10 samples, 0.05 / 80% criteria), greedy limb matching and person assembly. `heatmap` is H x W x 19 and `paf`
 * H x W x 38 (HWC, float64: heatmap_avg / paf_avg).
 */
export function bodyFromMaps(heatmap: Float64Array, paf: Float64Array, H: number, W: number): BodyResult {
  const thre1 = 0.1;
  const thre2 = 0.05;
  const allPeaks: [number, number, number, number][][] = [];
  let peakCounter = 0;
  const mapOri = new Float64Array(H * W);
  for (let part = 0; part < 18; part++) {
    for (let i = 0; i < H * W; i++) mapOri[i] = heatmap[i * 19 + part]!;
    const one = gaussianFilterSigma3(mapOri, H, W);
    const peaks: [number, number, number, number][] = [];
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = one[y * W + x]!;
        // neighbours outside the map compare against 0 (np.zeros shifted copies)
        const up = y > 0 ? one[(y - 1) * W + x]! : 0;
        const down = y < H - 1 ? one[(y + 1) * W + x]! : 0;
        const left = x > 0 ? one[y * W + x - 1]! : 0;
        const right = x < W - 1 ? one[y * W + x + 1]! : 0;
        if (v >= up && v >= down && v >= left && v >= right && v > thre1) {
          peaks.push([x, y, mapOri[y * W + x]!, peakCounter + peaks.length]);
        }
      }
    }
    allPeaks.push(peaks);
    peakCounter += peaks.length;
  }

  const connectionAll: number[][][] = [];
  const specialK = new Set<number>();
  const midNum = 10;
  for (let k = 0; k < MAP_IDX.length; k++) {
    const cx = MAP_IDX[k]![0] - 19;
    const cy = MAP_IDX[k]![1] - 19;
    const candA = allPeaks[LIMB_SEQ[k]![0] - 1]!;
    const candB = allPeaks[LIMB_SEQ[k]![1] - 1]!;
    const nA = candA.length;
    const nB = candB.length;
    if (nA === 0 || nB === 0) {
      specialK.add(k);
      connectionAll.push([]);
      continue;
    }
    const candidates: [number, number, number, number][] = [];
    for (let i = 0; i < nA; i++) {
      for (let j = 0; j < nB; j++) {
        const a = candA[i]!;
        const b = candB[j]!;
        const vx0 = b[0] - a[0];
        const vy0 = b[1] - a[1];
        const norm = Math.max(0.001, Math.sqrt(vx0 * vx0 + vy0 * vy0));
        const vx = vx0 / norm;
        const vy = vy0 / norm;
        const xs = linspace(a[0], b[0], midNum);
        const ys = linspace(a[1], b[1], midNum);
        let sum = 0;
        let above = 0;
        for (let I = 0; I < midNum; I++) {
          const p = (roundHalfEven(ys[I]!) * W + roundHalfEven(xs[I]!)) * 38;
          const s = paf[p + cx]! * vx + paf[p + cy]! * vy;
          sum += s;
          if (s > thre2) above++;
        }
        const scoreWithDistPrior = sum / midNum + Math.min((0.5 * H) / norm - 1, 0);
        if (above > 0.8 * midNum && scoreWithDistPrior > 0) {
          candidates.push([i, j, scoreWithDistPrior, scoreWithDistPrior + a[2] + b[2]]);
        }
      }
    }
    // sorted(..., key=score, reverse=True) is stable: equal scores keep their order
    candidates.sort((p, q) => q[2] - p[2]);
    const connection: number[][] = [];
    for (const [i, j, s] of candidates) {
      if (!connection.some((c) => c[3] === i) && !connection.some((c) => c[4] === j)) {
        connection.push([candA[i]![3], candB[j]![3], s, i, j]);
        if (connection.length >= Math.min(nA, nB)) break;
      }
    }
    connectionAll.push(connection);
  }

  const candidate = allPeaks.flat().map((p) => [...p]);
  let subset: number[][] = [];
  for (let k = 0; k < MAP_IDX.length; k++) {
    if (specialK.has(k)) continue;
    const conns = connectionAll[k]!;
    const indexA = LIMB_SEQ[k]![0] - 1;
    const indexB = LIMB_SEQ[k]![1] - 1;
    for (const conn of conns) {
      const [partA, partB, score] = conn as [number, number, number];
      let found = 0;
      const subsetIdx = [-1, -1];
      for (let j = 0; j < subset.length; j++) {
        if (subset[j]![indexA] === partA || subset[j]![indexB] === partB) {
          if (found >= 2)
            throw new Error('openpose: a limb joins three people (the original raises IndexError)');
          subsetIdx[found] = j;
          found++;
        }
      }
      if (found === 1) {
        const row = subset[subsetIdx[0]!]!;
        if (row[indexB] !== partB) {
          row[indexB] = partB;
          row[19] = row[19]! + 1;
          row[18] = row[18]! + (candidate[partB]![2]! + score);
        }
      } else if (found === 2) {
        const r1 = subset[subsetIdx[0]!]!;
        const r2 = subset[subsetIdx[1]!]!;
        let overlap = false;
        for (let c = 0; c < 18; c++) if (r1[c]! >= 0 && r2[c]! >= 0) overlap = true;
        if (!overlap) {
          for (let c = 0; c < 18; c++) r1[c] = r1[c]! + (r2[c]! + 1);
          r1[18] = r1[18]! + r2[18]!;
          r1[19] = r1[19]! + r2[19]!;
          r1[18] = r1[18]! + score;
          subset = subset.filter((_, idx) => idx !== subsetIdx[1]);
        } else {
          r1[indexB] = partB;
          r1[19] = r1[19]! + 1;
          r1[18] = r1[18]! + (candidate[partB]![2]! + score);
        }
      } else if (found === 0 && k < 17) {
        const row = new Array<number>(20).fill(-1);
        row[indexA] = partA;
        row[indexB] = partB;
        row[19] = 2;
        row[18] = 0 + candidate[partA]![2]! + candidate[partB]![2]! + score;
        subset.push(row);
      }
    }
  }
  subset = subset.filter((row) => !(row[19]! < 4 || row[18]! / row[19]! < 0.4));
  return { candidate, subset };
}

/** A hand box of util.handDetect: top-left x, y, square width (all int) and whether it is the left hand. */
export interface HandBox {
  x: number;
  y: number;
  w: number;
  isLeft: boolean;
  /** Row of the person in the subset (for the keypoint JSON). */
  person: number;
}

/** util.handDetect: square hand boxes from shoulder/elbow/wrist (ratio 0.33, width 1.5 x max distance, >= 20 px). */
export function handDetect(body: BodyResult, imageH: number, imageW: number): HandBox[] {
  const { candidate, subset } = body;
  const out: HandBox[] = [];
  subset.forEach((row, person) => {
    const p = row.map(Math.trunc);
    const hasLeft = p[5] !== -1 && p[6] !== -1 && p[7] !== -1;
    const hasRight = p[2] !== -1 && p[3] !== -1 && p[4] !== -1;
    if (!(hasLeft || hasRight)) return;
    const hands: [number, number, number, boolean][] = [];
    if (hasLeft) hands.push([p[5]!, p[6]!, p[7]!, true]);
    if (hasRight) hands.push([p[2]!, p[3]!, p[4]!, false]);
    for (const [s, e, wr, isLeft] of hands) {
      const [x1, y1] = candidate[s]!;
      const [x2, y2] = candidate[e]!;
      const [x3, y3] = candidate[wr]!;
      let x = x3! + 0.33 * (x3! - x2!);
      let y = y3! + 0.33 * (y3! - y2!);
      const dWE = Math.sqrt((x3! - x2!) ** 2 + (y3! - y2!) ** 2);
      const dES = Math.sqrt((x2! - x1!) ** 2 + (y2! - y1!) ** 2);
      let width = 1.5 * Math.max(dWE, 0.9 * dES);
      x -= width / 2;
      y -= width / 2;
      if (x < 0) x = 0;
      if (y < 0) y = 0;
      let width1 = width;
      let width2 = width;
      if (x + width > imageW) width1 = imageW - x;
      if (y + width > imageH) width2 = imageH - y;
      width = Math.min(width1, width2);
      if (width >= 20) out.push({ x: Math.trunc(x), y: Math.trunc(y), w: Math.trunc(width), isLeft, person });
    }
  });
  return out;
}

/** A face box of util.faceDetect (top-left x, y, square width). */
export interface FaceBox {
  x: number;
  y: number;
  w: number;
  person: number;
}

/** util.faceDetect: a square around the nose sized by the eye (x3) and ear (x1.5) distances, >= 20 px. */
export function faceDetect(body: BodyResult, imageH: number, imageW: number): FaceBox[] {
  const { candidate, subset } = body;
  const out: FaceBox[] = [];
  subset.forEach((row, person) => {
    const p = row.map(Math.trunc);
    if (!(p[0]! > -1)) return;
    const parts: [number, number][] = [
      [p[14]!, 3.0],
      [p[15]!, 3.0],
      [p[16]!, 1.5],
      [p[17]!, 1.5],
    ];
    if (!parts.some(([idx]) => idx > -1)) return;
    let width = 0.0;
    const [x0, y0] = candidate[p[0]!]!;
    for (const [idx, f] of parts) {
      if (idx <= -1) continue;
      const [x1, y1] = candidate[idx]!;
      const d = Math.max(Math.abs(x0! - x1!), Math.abs(y0! - y1!));
      width = Math.max(width, d * f);
    }
    let x = x0! - width;
    let y = y0! - width;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    let width1 = width * 2;
    let width2 = width * 2;
    if (x + width > imageW) width1 = imageW - x;
    if (y + width > imageH) width2 = imageH - y;
    width = Math.min(width1, width2);
    if (width >= 20) out.push({ x: Math.trunc(x), y: Math.trunc(y), w: Math.trunc(width), person });
  });
  return out;
}

/** np.sum of a contiguous float64 array: numpy's pairwise summation (8 accumulators, blocks of 128). */
function npSum(a: readonly number[]): number {
  const pairwise = (lo: number, n: number): number => {
    if (n < 8) {
      let res = 0;
      for (let i = 0; i < n; i++) res += a[lo + i]!;
      return res;
    }
    if (n <= 128) {
      const r = a.slice(lo, lo + 8);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = r[j]! + a[lo + i + j]!;
      let res = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
      for (; i < n; i++) res += a[lo + i]!;
      return res;
    }
    let n2 = Math.trunc(n / 2);
    n2 -= n2 % 8;
    return pairwise(lo, n2) + pairwise(lo + n2, n - n2);
  };
  return pairwise(0, a.length);
}

/** 8-connected component labels (skimage.measure.label, connectivity 2), numbered in raster order of first pixel. */
function label8(binary: Uint8Array, h: number, w: number): { labels: Int32Array; count: number } {
  const labels = new Int32Array(h * w);
  let count = 0;
  const stack: number[] = [];
  for (let i = 0; i < h * w; i++) {
    if (!binary[i] || labels[i]) continue;
    count++;
    labels[i] = count;
    stack.push(i);
    while (stack.length) {
      const p = stack.pop()!;
      const py = Math.trunc(p / w);
      const px = p % w;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const y = py + dy;
          const x = px + dx;
          if (y < 0 || y >= h || x < 0 || x >= w) continue;
          const q = y * w + x;
          if (binary[q] && !labels[q]) {
            labels[q] = count;
            stack.push(q);
          }
        }
      }
    }
  }
  return { labels, count };
}

/** Hand.__call__ after the networks: per part, the largest-mass blob of the smoothed 128 x 128 map, its argmax scaled to the crop. */
export function handPeaksFromMaps(
  heatmapAvg: Float64Array,
  cropH: number,
  cropW: number,
): [number, number][] {
  const wsize = 128;
  const peaks: [number, number][] = [];
  const mapOri = new Float64Array(wsize * wsize);
  for (let part = 0; part < 21; part++) {
    for (let i = 0; i < wsize * wsize; i++) mapOri[i] = heatmapAvg[i * 22 + part]!;
    const one = gaussianFilterSigma3(mapOri, wsize, wsize);
    const binary = new Uint8Array(wsize * wsize);
    let any = false;
    for (let i = 0; i < one.length; i++) {
      if (one[i]! > 0.05) {
        binary[i] = 1;
        any = true;
      }
    }
    if (!any) {
      peaks.push([0, 0]);
      continue;
    }
    const { labels, count } = label8(binary, wsize, wsize);
    const members: number[][] = Array.from({ length: count }, () => []);
    for (let i = 0; i < labels.length; i++) if (labels[i]) members[labels[i]! - 1]!.push(mapOri[i]!);
    let best = 0;
    let bestSum = -Infinity;
    members.forEach((m, idx) => {
      const s = npSum(m);
      if (s > bestSum) {
        bestSum = s;
        best = idx + 1;
      }
    });
    for (let i = 0; i < mapOri.length; i++) if (labels[i] !== best) mapOri[i] = 0;
    // util.npmax: row of the largest row maximum (first), then its first argmax
    let by = 0;
    let bx = 0;
    let bv = -Infinity;
    for (let y = 0; y < wsize; y++) {
      let rv = -Infinity;
      let rx = 0;
      for (let x = 0; x < wsize; x++) {
        if (mapOri[y * wsize + x]! > rv) {
          rv = mapOri[y * wsize + x]!;
          rx = x;
        }
      }
      if (rv > bv) {
        bv = rv;
        by = y;
        bx = rx;
      }
    }
    peaks.push([Math.trunc((bx * cropW) / wsize), Math.trunc((by * cropH) / wsize)]);
  }
  return peaks;
}

/**
 * Face.compute_peaks_from_heatmaps per channel: the first argmax [x, y] of a channel with a value > 0.05 (float32),
 * null for the others (which the original skips, so its list holds only the found channels).
 */
export function facePeaksFromMaps(
  heatmaps: Float32Array,
  c: number,
  h: number,
  w: number,
): ([number, number] | null)[] {
  const thr = Math.fround(0.05);
  const out: ([number, number] | null)[] = [];
  for (let part = 0; part < c; part++) {
    let best = -1;
    let bv = -Infinity;
    for (let i = 0; i < h * w; i++) {
      const v = heatmaps[part * h * w + i]!;
      if (v > thr && v > bv) {
        bv = v;
        best = i;
      }
    }
    out.push(best >= 0 ? [best % w, Math.trunc(best / w)] : null);
  }
  return out;
}
