/**
 * Preprocessor benchmark: time and peak memory of every preprocessor on a 512x512 RGB photo-like image, through
 * the worker's PreprocessorRegistry on each engine (tfjs on wasm, the best tfjs backend without tfjs-node; ONNX
 * Runtime CPU fp32), plus the model-free ones from @contour/shared/preprocess (shuffle, tile_resample, canny).
 *
 * Network weights are seeded synthetic values (syntheticTensor) at the real checkpoint layout, regenerated from
 * each family's manifest under test/fixtures/preprocessors/ into a temporary annotator folder under the
 * lllyasviel/Annotators file names (speed does not depend on the values; written one tensor at a time, the same
 * safetensors bytes as synthetic-annotators.ts makes without holding a checkpoint in memory twice). Each (preprocessor, engine) pair runs
 * in its own child process, so `rss_mib` is that process's peak RSS (node + engine + weights + activations) and
 * nothing stays loaded between pairs; `base_rss_mib` is the same process before the model loads.
 *
 *   load_ms   the registry's model load (reading the checkpoint into tensors), from its log line
 *   first_ms  the first run after the load (includes the ONNX graph build + session creation on onnxruntime,
 *             the wasm kernels' first calls on tfjs)
 *   warm_ms   median of 3 further runs
 *
 *   npm run bench preprocessors [names...] [--engines=tfjs,onnxruntime]
 *   (or npx tsx gpu-worker/bench/preprocessors.bench.ts [...]; plain `npm run bench` runs only the model-free ones:
 *   the network ones take about half an hour on 2 shared cores)
 *
 * Env: CONTOUR_BENCH_SIZE (image side, default 512); CONTOUR_ENGINE_THREADS (ONNX Runtime intra-op threads; default one per core); CONTOUR_BENCH_CHILD_TIMEOUT_S
 * (per pair, default 900).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PREPROCESSORS, type PreprocessorName, parsePreprocessorParams } from '@contour/shared/contracts';
import { canny, contentShuffle, type Image8, resizeImageTo, tileResample } from '@contour/shared/preprocess';
import { type EngineSettings, selectEngine } from '../src/engine/select.ts';
import { PREPROCESSOR_DEFINITIONS, PreprocessorRegistry } from '../src/preprocessors/index.ts';
import { ANNOTATOR_MANIFESTS, writeSyntheticCheckpoint } from '../src/preprocessors/synthetic-annotators.ts';
import type { ManifestEntry } from '../src/preprocessors/synthetic-weights.ts';

/** Image side (CONTOUR_BENCH_SIZE overrides 512, e.g. to see whether a failure is one of memory). */
const SIZE = Number(process.env['CONTOUR_BENCH_SIZE']) || 512;
const WARM_RUNS = 3;
const SEED = 1;
const ENGINES = ['tfjs', 'onnxruntime'] as const;
type EngineName = (typeof ENGINES)[number];
const FIXTURES = fileURLToPath(new URL('../test/fixtures/preprocessors/', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const mib = (bytes: number) => bytes / 2 ** 20;
/** Peak RSS of this process so far, MiB (resourceUsage reports KiB). */
const peakRssMib = () => process.resourceUsage().maxRSS / 1024;

/** A deterministic photo-like RGB image: sky gradient, ground, shaded shapes, soft texture and fine noise. */
export function photoLikeImage(width: number, height: number): Image8<3> {
  const data = new Uint8Array(width * height * 3);
  const hash = (x: number, y: number) => {
    let h = Math.imul(x, 374761393) + Math.imul(y, 668265263);
    h = Math.imul(h ^ (h >>> 13), 1274126177);
    return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
  };
  const horizon = height * 0.55;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const v = y / height;
      let rgb: [number, number, number];
      if (y < horizon + 20 * Math.sin(u * 7)) {
        rgb = [120 + 80 * v, 160 + 60 * v, 235 - 20 * v]; // sky
      } else {
        const stripes = 12 * Math.sin(x * 0.15 + y * 0.05) * Math.sin(y * 0.11);
        rgb = [90 + 50 * v + stripes, 110 + 30 * v + stripes, 60 + stripes]; // grass-like ground
      }
      // A lit sphere, a box with a shadowed side and a thin pole: edges, gradients and flat regions.
      const dx = (x - width * 0.32) / (width * 0.14);
      const dy = (y - height * 0.58) / (width * 0.14);
      const r2 = dx * dx + dy * dy;
      if (r2 < 1) {
        const shade = Math.max(0, -0.5 * dx - 0.6 * dy + 0.6 * Math.sqrt(1 - r2));
        rgb = [200 * shade + 30, 60 * shade + 20, 50 * shade + 20];
      }
      if (u > 0.58 && u < 0.82 && v > 0.42 && v < 0.8) rgb = u < 0.7 ? [180, 170, 150] : [120, 112, 100];
      if (Math.abs(u - 0.9) < 0.006 && v > 0.2 && v < 0.85) rgb = [40, 40, 45];
      const noise = (hash(x, y) - 0.5) * 16;
      const i = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) data[i + c] = Math.max(0, Math.min(255, Math.round(rgb[c]! + noise)));
    }
  }
  return { width, height, channels: 3, data };
}

/** Median of a non-empty list. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The defaults of a preprocessor's params as the shared contract completes them ({} when it has none there). */
function defaultParams(name: string): Record<string, number> {
  if (!Object.hasOwn(PREPROCESSORS, name)) return {};
  const parsed = parsePreprocessorParams(name as PreprocessorName, {});
  return parsed.ok ? parsed.params : {};
}

/** One result line. */
interface Result {
  name: string;
  engine: string;
  loadMs: number;
  firstMs: number;
  warmMs: number;
  rssMib: number;
  baseRssMib: number;
  weightsMib: number;
  note?: string;
}

function formatLine(r: Result): string {
  return (
    `preprocessor=${r.name} engine=${r.engine} load_ms=${r.loadMs.toFixed(0)} first_ms=${r.firstMs.toFixed(0)} ` +
    `warm_ms=${r.warmMs.toFixed(r.warmMs < 10 ? 1 : 0)} rss_mib=${r.rssMib.toFixed(0)}${Number.isNaN(r.baseRssMib) ? '' : ` base_rss_mib=${r.baseRssMib.toFixed(0)}`} ` +
    `weights_mib=${r.weightsMib.toFixed(1)}${r.note ? ` note=${r.note}` : ''}`
  );
}

/** How many keypoint lists have any detected point (confidence > 0). */
function found(lists: (number[] | undefined)[]): number {
  return lists.filter((list) => list?.some((v, i) => i % 3 === 2 && v > 0)).length;
}

/** Whether a map is a single flat value (a sign the synthetic weights saturated the network). */
function flat(map: Image8): boolean {
  const first = map.data[0];
  return map.data.every((v) => v === first);
}

// ---------------------------------------------------------------- child: one preprocessor on one engine

/** Runs `name` on `engine` with the annotator folder `dir`; prints one JSON result line. */
async function child(name: string, engine: EngineName, dir: string, cacheDir: string): Promise<void> {
  const threads = Number(process.env['CONTOUR_ENGINE_THREADS']) || undefined;
  const settings: EngineSettings =
    engine === 'tfjs'
      ? { engine: 'tfjs', device: undefined, precision: undefined, threads, tfBackend: 'wasm' }
      : { engine: 'onnxruntime', device: 'cpu', precision: 'fp32', threads, tfBackend: undefined };
  const selected = await selectEngine({ settings, cacheDir, log: () => {} });
  let loadMs = Number.NaN;
  let weightsMib = Number.NaN;
  const registry = new PreprocessorRegistry({
    definitions: PREPROCESSOR_DEFINITIONS,
    annotatorDir: dir,
    budgetBytes: Number.POSITIVE_INFINITY,
    engine: selected.engine,
    log: (line) => {
      // "preprocessor model <key> loaded: <MiB> MiB in <ms> ms"
      const match = / loaded: ([\d.]+) MiB in (\d+) ms/.exec(line);
      if (match) {
        weightsMib = Number(match[1]);
        loadMs = Number(match[2]);
      }
    },
  });
  const image = photoLikeImage(SIZE, SIZE);
  const params = defaultParams(name);
  const baseRssMib = process.memoryUsage().rss / 2 ** 20;

  let started = performance.now();
  const first = await registry.run(name, image, params);
  const firstMs = performance.now() - started - loadMs;
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    started = performance.now();
    await registry.run(name, image, params);
    warm.push(performance.now() - started);
  }
  const rssMib = peakRssMib();
  const notes = [
    first.map.width !== SIZE || first.map.height !== SIZE ? `map_${first.map.width}x${first.map.height}` : '',
    flat(first.map) ? 'flat_map' : '',
    // Hand and face networks run once per detected person: their cost shows only when the body net finds people.
    first.keypoints ? `people=${first.keypoints.people.length}` : '',
    first.keypoints
      ? `hands_found=${found(first.keypoints.people.flatMap((p) => [p.hand_left_keypoints_2d, p.hand_right_keypoints_2d]))}`
      : '',
    first.keypoints ? `faces_found=${found(first.keypoints.people.map((p) => p.face_keypoints_2d))}` : '',
  ].filter(Boolean);
  const note = notes.length > 0 ? notes.join(',') : undefined;
  await registry.dispose();
  const result: Result = {
    name,
    engine: `${selected.info.engine}-${selected.info.device}`,
    loadMs,
    firstMs,
    warmMs: median(warm),
    rssMib,
    baseRssMib,
    weightsMib,
    note,
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

// ---------------------------------------------------------------- parent

/** The manifest of a weight file (ANNOTATOR_MANIFESTS: every annotator file this build has a layout for). */
export function findManifest(file: string): { path: string } | { reason: string } {
  const listed = ANNOTATOR_MANIFESTS[file];
  if (listed) return { path: join(FIXTURES, listed) };
  return { reason: `no manifest for ${file} in ANNOTATOR_MANIFESTS` };
}

/** Times a model-free preprocessor in this process (first run, then the median of 3). */
function modelFree(name: string, run: () => Image8): Result {
  let started = performance.now();
  run();
  const firstMs = performance.now() - started;
  const warm: number[] = [];
  for (let i = 0; i < WARM_RUNS; i++) {
    started = performance.now();
    run();
    warm.push(performance.now() - started);
  }
  return {
    name,
    engine: 'none',
    loadMs: 0,
    firstMs,
    warmMs: median(warm),
    rssMib: peakRssMib(),
    baseRssMib: Number.NaN,
    weightsMib: 0,
  };
}

async function parent(argv: string[]): Promise<number> {
  const engineArg = argv.find((a) => a.startsWith('--engines='));
  const engines = (
    engineArg ? engineArg.slice('--engines='.length).split(',') : [...ENGINES]
  ) as EngineName[];
  const only = argv.filter((a) => !a.startsWith('--'));
  const wanted = (name: string) => only.length === 0 || only.includes(name);
  const timeoutS = Number(process.env['CONTOUR_BENCH_CHILD_TIMEOUT_S']) || 900;
  console.log(
    `preprocessors on a ${SIZE}x${SIZE} photo-like RGB image; synthetic full-size weights (seed ${SEED}); warm_ms = median of ${WARM_RUNS}; rss_mib = peak RSS of the process running it`,
  );
  let failed = 0;

  // Model-free (plain JS, same code on the edge and the worker): first, while this process is still small.
  const image = photoLikeImage(SIZE, SIZE);
  const free: [string, () => Image8][] = [
    ['canny', () => canny(image, { low: 100, high: 200 })],
    ['shuffle', () => contentShuffle(image, SIZE, SIZE, 0)],
    ['tile_resample(rate=2)', () => tileResample(image, 2, (img, w, h) => resizeImageTo(img, w, h))],
  ];
  for (const [name, run] of free)
    if (wanted(name.replace(/\(.*/, ''))) console.log(formatLine(modelFree(name, run)));

  if (process.env['CONTOUR_BENCH_DEFAULT_SET'] === '1') {
    console.log(
      'network preprocessors skipped in the default set (about 30 min on 2 shared cores): npm run bench preprocessors [names...] [--engines=tfjs,onnxruntime]',
    );
    return 0;
  }
  const definitions = PREPROCESSOR_DEFINITIONS.filter((d) => d.model && wanted(d.name));
  if (definitions.length === 0) return 0;
  const dir = mkdtempSync(join(tmpdir(), 'contour-bench-annotators-'));
  const cacheRoot = mkdtempSync(join(tmpdir(), 'contour-bench-onnx-'));
  try {
    // Each weight file once, under its Annotators name (the loaders read safetensors content whatever the name).
    const skipped = new Map<string, string>();
    for (const file of new Set(definitions.flatMap((d) => d.model!.files))) {
      const found = findManifest(file);
      if ('reason' in found) {
        skipped.set(file, found.reason);
        continue;
      }
      const started = performance.now();
      const manifest = JSON.parse(readFileSync(found.path, 'utf8')) as ManifestEntry[];
      const bytes = writeSyntheticCheckpoint(manifest, SEED, join(dir, file));
      console.log(
        `weights ${file}: ${mib(bytes).toFixed(1)} MiB synthetic from ${found.path.slice(FIXTURES.length)} in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
    }

    for (const definition of definitions) {
      const missing = definition.model!.files.filter((f) => skipped.has(f));
      if (missing.length > 0) {
        console.log(
          `preprocessor=${definition.name} skipped: ${missing.map((f) => skipped.get(f)).join('; ')}`,
        );
        continue;
      }
      for (const engine of engines) {
        // A fresh graph cache per pair, so first_ms includes the ONNX graph build every time.
        const cacheDir = mkdtempSync(join(cacheRoot, 'pair-'));
        const out = spawnSync(
          process.execPath,
          ['--import', 'tsx', SELF, '--child', definition.name, engine, dir, cacheDir],
          { encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 64 * 2 ** 20 },
        );
        rmSync(cacheDir, { recursive: true, force: true });
        const line = out.stdout?.split('\n').find((l) => l.startsWith('RESULT '));
        if (out.status === 0 && line) {
          console.log(formatLine(JSON.parse(line.slice('RESULT '.length)) as Result));
        } else {
          failed++;
          const why = out.error?.message ?? `exit ${out.status ?? out.signal}`;
          // The thrown error's own line (not the stack below it), else the last line.
          const lines = `${out.stderr ?? ''}`.trim().split('\n');
          const tail = lines.find((l) => /Error|error:|abort/i.test(l) && !/^\s+at /.test(l)) ?? lines.at(-1);
          console.log(`preprocessor=${definition.name} engine=${engine} failed: ${why}: ${tail}`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheRoot, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  await child(args[1]!, args[2] as EngineName, args[3]!, args[4]!);
  process.exit(0);
} else {
  process.exitCode = await parent(args);
}
