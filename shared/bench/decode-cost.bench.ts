// Edge CPU for the worst images the decode-work limits admit (issue 20), and the cost model's calibration.
// For each shape of hostile-but-admitted file, sized so its estimated decode work sits at a limit, it times the
// edge's whole job on it: decode + resize to the output size + canny + encode PNG, in CPU time (the Workers limit).
// Limits: the edge's per-image budget (EDGE_PREPROCESS_MAX_PIXELS = 1,048,576 units, generations) and 4x that
// (/v1/preprocess, edge only). BENCH_WORKER_LIMIT=1 adds the worker's 32 M-unit limit (seconds per row).
// Run: npx tsx shared/bench/decode-cost.bench.ts  (also part of `npm run bench`).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { encode as jpegJsEncode } from 'jpeg-js';
import {
  assertDecodeWork,
  canny,
  decodeImage,
  decodeWork,
  encodePng,
  encodeWebp,
  MAX_DECODE_WORK,
  MAX_JPEG_SCANS,
  registerWebpCodec,
  resizeImageTo,
} from '../src/preprocess/index.ts';
import { manyScanJpeg, zeroPng16 } from '../test/hostile-images.ts';

const require = createRequire(import.meta.url);
const wasm = (path: string) => new WebAssembly.Module(readFileSync(require.resolve(path)));
registerWebpCodec({
  decoder: wasm('@jsquash/webp/codec/dec/webp_dec.wasm'),
  encoder: wasm('@jsquash/webp/codec/enc/webp_enc_simd.wasm'),
});

const EDGE_BUDGET = 1_048_576;
const limits: [string, number][] = [
  ['edge, generations (1.05 M units)', EDGE_BUDGET],
  ['edge, /v1/preprocess (4.2 M units)', 4 * EDGE_BUDGET],
];
if (process.env['BENCH_WORKER_LIMIT']) limits.push(['worker (32 M units)', MAX_DECODE_WORK]);

/** Deterministic noise (an LCG): incompressible pixels, the costly case for every codec. */
function noise(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = 12345;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Largest square side whose decode work (per pixel `unitsPerPixel`) fits in `budget`. */
const side = (budget: number, unitsPerPixel: number) => Math.floor(Math.sqrt(budget / unitsPerPixel));

/** The shapes of file, each built to sit at `budget` units. */
async function worstFiles(budget: number): Promise<[string, Uint8Array][]> {
  const jpegSide = side(budget, 1);
  const rgba = noise(jpegSide * jpegSide * 4);
  const baseline = jpegJsEncode({ width: jpegSide, height: jpegSide, data: rgba }, 95).data;
  const scansSide = side(budget, 1 + 0.05 * (MAX_JPEG_SCANS - 1));
  const pngSide = side(budget, 1.2);
  const webpSide = side(budget, 0.4);
  return [
    [
      `baseline JPEG ${jpegSide}^2, noise q95`,
      new Uint8Array(baseline.buffer, baseline.byteOffset, baseline.byteLength),
    ],
    [
      `progressive JPEG ${scansSide}^2, ${MAX_JPEG_SCANS} scans`,
      manyScanJpeg(scansSide, scansSide, MAX_JPEG_SCANS),
    ],
    [
      `PNG 8-bit RGB ${pngSide}^2, noise`,
      encodePng({ width: pngSide, height: pngSide, channels: 3, data: noise(pngSide * pngSide * 3) }),
    ],
    [`PNG 16-bit RGBA ${side(budget, 1.6)}^2, zeros`, zeroPng16(side(budget, 1.6), side(budget, 1.6))],
    [
      `PNG 16-bit RGBA Adam7 ${side(budget, 2.4)}^2, zeros`,
      zeroPng16(side(budget, 2.4), side(budget, 2.4), true),
    ],
    [
      `WebP lossy ${webpSide}^2, noise`,
      await encodeWebp(
        { width: webpSide, height: webpSide, channels: 3, data: noise(webpSide * webpSide * 3) },
        { quality: 90 },
      ),
    ],
  ];
}

/** The edge's job on one image: what `runSharedPreprocessor` does, at a 512x512 output. */
async function edgeJob(bytes: Uint8Array, budget: number): Promise<void> {
  const decoded = await decodeImage(bytes, { maxPixels: 4096 * 4096, maxWork: budget });
  encodePng(canny(resizeImageTo(decoded, 512, 512), { low: 100, high: 200 }));
}

const rows: Record<string, Record<string, string>> = {};
for (const [limitName, budget] of limits) {
  for (const [name, bytes] of await worstFiles(budget)) {
    const work = assertDecodeWork(bytes, budget);
    await edgeJob(bytes, budget); // warm-up (JIT, wasm)
    const runs = budget > 8 * EDGE_BUDGET ? 1 : 3;
    const cpu: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = process.cpuUsage();
      await edgeJob(bytes, budget);
      const used = process.cpuUsage(start);
      cpu.push((used.user + used.system) / 1000);
    }
    const median = cpu.sort((a, b) => a - b)[Math.floor(cpu.length / 2)]!;
    rows[`${limitName}: ${name}`] = {
      'file KB': (bytes.length / 1024).toFixed(1),
      'decode units': String(work.units),
      'edge CPU ms': median.toFixed(0),
      'ns per unit': ((median * 1e6) / work.units).toFixed(0),
    };
  }
}
// The attack files, refused before any decoding (the refusal's cost is the header walk).
for (const [name, bytes] of [
  ['4000^2 JPEG, 2,000 scans (refused)', manyScanJpeg(4000, 4000, 2000)],
  [
    '4096^2 16-bit RGBA Adam7 PNG header (refused)',
    zeroPng16(64, 64, true).map((v, i) => (i >= 16 && i < 24 ? [0, 0, 16, 0, 0, 0, 16, 0][i - 16]! : v)),
  ],
] as [string, Uint8Array][]) {
  const start = process.cpuUsage();
  let verdict = 'admitted';
  try {
    decodeWork(bytes);
    assertDecodeWork(bytes, MAX_DECODE_WORK);
  } catch (error) {
    verdict = (error as Error).message.slice(0, 60);
  }
  const used = process.cpuUsage(start);
  rows[name] = {
    'file KB': (bytes.length / 1024).toFixed(1),
    'decode units': verdict,
    'edge CPU ms': ((used.user + used.system) / 1000).toFixed(1),
    'ns per unit': '',
  };
}
console.log(
  'Edge CPU (decode + resize to 512^2 + canny + encode PNG) for the worst image each limit admits; median of 3',
);
console.table(rows);
