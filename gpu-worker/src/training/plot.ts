import { encodePng } from '@contour/shared/preprocess';

/** One line of a chart. */
export interface Series {
  label: string;
  colour: readonly [number, number, number];
  points: readonly { x: number; y: number }[];
}

// A 3x5 pixel font for tick numbers and legends (rows top to bottom, 3 bits each, MSB left).
const FONT: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7],
  '1': [2, 6, 2, 2, 7],
  '2': [7, 1, 7, 4, 7],
  '3': [7, 1, 7, 1, 7],
  '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7],
  '6': [7, 4, 7, 5, 7],
  '7': [7, 1, 1, 1, 1],
  '8': [7, 5, 7, 5, 7],
  '9': [7, 5, 7, 1, 7],
  '.': [0, 0, 0, 0, 2],
  '-': [0, 0, 7, 0, 0],
  ' ': [0, 0, 0, 0, 0],
  '(': [1, 2, 2, 2, 1],
  ')': [4, 2, 2, 2, 4],
  A: [2, 5, 7, 5, 5],
  B: [6, 5, 6, 5, 6],
  C: [7, 4, 4, 4, 7],
  D: [6, 5, 5, 5, 6],
  E: [7, 4, 6, 4, 7],
  F: [7, 4, 6, 4, 4],
  G: [7, 4, 5, 5, 7],
  H: [5, 5, 7, 5, 5],
  I: [7, 2, 2, 2, 7],
  J: [1, 1, 1, 5, 7],
  K: [5, 5, 6, 5, 5],
  L: [4, 4, 4, 4, 7],
  M: [5, 7, 7, 5, 5],
  N: [6, 5, 5, 5, 5],
  O: [7, 5, 5, 5, 7],
  P: [7, 5, 7, 4, 4],
  Q: [7, 5, 5, 7, 1],
  R: [6, 5, 6, 5, 5],
  S: [7, 4, 7, 1, 7],
  T: [7, 2, 2, 2, 2],
  U: [5, 5, 5, 5, 7],
  V: [5, 5, 5, 5, 2],
  W: [5, 5, 7, 7, 5],
  X: [5, 5, 2, 5, 5],
  Y: [5, 5, 2, 2, 2],
  Z: [7, 1, 2, 4, 7],
};

/**
 * A line chart as PNG bytes: axes, y ticks every 0.1 of [yMin, yMax], x ticks at the data's range, one coloured
 * polyline per series, legend top-left. Hand-drawn on purpose: a plotting library would pull a canvas/native
 * dependency into the worker for one training figure.
 */
export function lineChartPng(
  series: readonly Series[],
  options: { width?: number; height?: number; yMin?: number; yMax?: number; title?: string } = {},
): Uint8Array {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const yMin = options.yMin ?? 0;
  const yMax = options.yMax ?? 1;
  const data = new Uint8Array(width * height * 3).fill(255);
  const set = (x: number, y: number, c: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    data.set(c, (Math.round(y) * width + Math.round(x)) * 3);
  };
  const text = (s: string, x: number, y: number, c: readonly number[], scale = 2) => {
    [...s.toUpperCase()].forEach((ch, k) => {
      const rows = FONT[ch] ?? FONT[' ']!;
      rows.forEach((bits, r) => {
        for (let b = 0; b < 3; b++) {
          if (!(bits & (4 >> b))) continue;
          for (let sy = 0; sy < scale; sy++)
            for (let sx = 0; sx < scale; sx++) set(x + (k * 4 + b) * scale + sx, y + r * scale + sy, c);
        }
      });
    });
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: readonly number[], thick = 1) => {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) {
      const x = x0 + ((x1 - x0) * i) / n;
      const y = y0 + ((y1 - y0) * i) / n;
      for (let d = -(thick >> 1); d <= thick >> 1; d++) {
        set(x, y + d, c);
        set(x + d, y, c);
      }
    }
  };
  const left = 50;
  const right = width - 15;
  const top = 30;
  const bottom = height - 30;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const xMin = Math.min(...xs, 0);
  const xMax = Math.max(...xs, 1);
  const px = (x: number) => left + ((x - xMin) / (xMax - xMin)) * (right - left);
  const py = (y: number) =>
    bottom - ((Math.min(yMax, Math.max(yMin, y)) - yMin) / (yMax - yMin)) * (bottom - top);
  const grey = [210, 210, 210];
  for (let k = 0; k <= 10; k++) {
    const y = yMin + ((yMax - yMin) * k) / 10;
    line(left, py(y), right, py(y), grey);
    text(y.toFixed(1), 8, py(y) - 5, [0, 0, 0]);
  }
  for (let k = 0; k <= 4; k++) {
    const x = xMin + ((xMax - xMin) * k) / 4;
    line(px(x), bottom, px(x), bottom + 4, [0, 0, 0]);
    text(String(Math.round(x)), px(x) - 10, bottom + 8, [0, 0, 0]);
  }
  line(left, top, left, bottom, [0, 0, 0]);
  line(left, bottom, right, bottom, [0, 0, 0]);
  if (options.title) text(options.title, left, 8, [0, 0, 0]);
  series.forEach((s, k) => {
    // Three legend entries per row.
    text(s.label, left + 10 + (k % 3) * 200, top + 6 + Math.floor(k / 3) * 12, s.colour);
    for (let i = 1; i < s.points.length; i++) {
      const a = s.points[i - 1]!;
      const b = s.points[i]!;
      line(px(a.x), py(a.y), px(b.x), py(b.y), s.colour, 3);
    }
  });
  return encodePng({ width, height, channels: 3, data });
}
