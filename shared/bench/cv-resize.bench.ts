// Times cvResize on RGB photos-sized inputs (the resize_image cases: area down, Lanczos up) and, when Debian's
// python3-opencv is installed, cv2.resize on the same pixels, checking the outputs are identical.
// Run: npx tsx shared/bench/cv-resize.bench.ts  (also part of `npm run bench`).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CvInterpolation, cvResize, type RgbImage } from '../src/preprocess/index.ts';

/** A smooth gradient with noise (a photo-like mix of flat areas and detail), deterministic. */
function photo(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  let seed = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const noise = (seed >>> 24) % 32;
      const o = (y * width + x) * 3;
      data[o] = ((x * 255) / width + noise) & 255;
      data[o + 1] = ((y * 255) / height + noise) & 255;
      data[o + 2] = (((x + y) * 127) / (width + height) + noise * 2) & 255;
    }
  }
  return { width, height, channels: 3, data };
}

/** Median wall ms and median CPU ms of `fn` over `runs` runs after 3 untimed ones. */
function time(fn: () => unknown, runs: number): { wall: number; cpu: number } {
  for (let i = 0; i < 3; i++) fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    fn();
    wall.push(performance.now() - t);
    const u = process.cpuUsage(c);
    cpu.push((u.user + u.system) / 1000);
  }
  const median = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
  return { wall: median(wall), cpu: median(cpu) };
}

const FLAGS: Record<CvInterpolation, number> = { nearest: 0, linear: 1, cubic: 2, area: 3, lanczos4: 4 };

/** cv2.resize single-threaded median ms and its output, or undefined without python3-opencv. */
function timeOpenCv(
  img: RgbImage,
  width: number,
  height: number,
  interpolation: CvInterpolation,
  runs: number,
): { ms: number; out: Uint8Array } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'contour-cvresize-'));
  try {
    writeFileSync(join(dir, 'in.raw'), img.data);
    const script = `
import sys, time, numpy as np, cv2
w, h, dw, dh, flag, runs = (int(v) for v in sys.argv[1:7])
img = np.fromfile(sys.argv[7] + '/in.raw', dtype=np.uint8).reshape(h, w, 3)
cv2.setNumThreads(1)
for _ in range(3): out = cv2.resize(img, (dw, dh), interpolation=flag)
samples = []
for _ in range(runs):
    t = time.perf_counter(); out = cv2.resize(img, (dw, dh), interpolation=flag); samples.append(time.perf_counter() - t)
out.tofile(sys.argv[7] + '/out.raw')
print(sorted(samples)[len(samples) // 2] * 1000)
`;
    const args = [img.width, img.height, width, height, FLAGS[interpolation], runs].map(String);
    const run = spawnSync('/usr/bin/python3', ['-c', script, ...args, dir], { encoding: 'utf8' });
    if (run.status !== 0) return undefined;
    return { ms: Number(run.stdout.trim()), out: new Uint8Array(readFileSync(join(dir, 'out.raw'))) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: [string, RgbImage, number, number, CvInterpolation][] = [
  ['1024x1024 RGB -> 512x512 area', photo(1024, 1024), 512, 512, 'area'],
  ['1024x1024 RGB -> 448x448 area (fractional)', photo(1024, 1024), 448, 448, 'area'],
  ['512x512 RGB -> 768x768 lanczos4', photo(512, 512), 768, 768, 'lanczos4'],
  ['512x512 RGB -> 768x768 cubic', photo(512, 512), 768, 768, 'cubic'],
  ['512x512 RGB -> 768x768 linear', photo(512, 512), 768, 768, 'linear'],
];
const rows: Record<string, Record<string, string | number>> = {};
for (const [label, img, width, height, interpolation] of cases) {
  const ours = time(() => cvResize(img, width, height, interpolation), 15);
  const row: Record<string, string | number> = {
    'cvResize ms': +ours.wall.toFixed(1),
    'cpu ms': +ours.cpu.toFixed(1),
  };
  const cv = timeOpenCv(img, width, height, interpolation, 15);
  if (cv) {
    const got = cvResize(img, width, height, interpolation).data;
    row['cv2.resize ms (1 thread)'] = +cv.ms.toFixed(2);
    row['identical to cv2'] =
      got.length === cv.out.length && got.every((v, i) => v === cv.out[i]) ? 'yes' : 'NO';
  }
  rows[label] = row;
}
console.log('cvResize (Node, single thread; median of 15) against cv2.resize on the same pixels');
console.table(rows);
