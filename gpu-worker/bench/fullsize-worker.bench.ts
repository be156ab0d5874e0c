/**
 * Full-size generation through the worker's real path (model config -> registry -> engine -> HTTP job API): a
 * real worker process serving synthetic full-size SD1.5 (original single file) with two ControlNet 1.1 heads
 * (the `.pth` and the diffusers fp16 folder), on the engine CONTOUR_ENGINE picks (default onnxruntime). Prints
 * time to ready and RSS, then per-image and per-step time at 256x256 and 512x512, 20 DDIM steps, CFG, with one
 * ControlNet and then two.
 *
 *   CONTOUR_BENCH_FULLSIZE=1 npx tsx gpu-worker/bench/fullsize-worker.bench.ts
 *
 * Env: CONTOUR_SYNTHETIC_DIR (default <tmp>/contour-synthetic; the weights are written there first if absent),
 * BENCH_SIZES (256,512), BENCH_CONTROLNETS (1,2), BENCH_STEPS (20), CONTOUR_ENGINE (onnxruntime).
 *
 * Memory: on ONNX Runtime each head set's UNet+heads graph holds its own copy of the UNet weights beside the
 * tfjs copy, so one ControlNet peaks near 14 GiB of RSS at 256x256 and two exceed a 24 GiB machine.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkerMessage } from '@contour/shared/contracts';
import {
  drawingPng,
  makeJob,
  postJob,
  readMessages,
  startImageServer,
  startWorkerProcess,
} from '../test/service/helpers.ts';
import { writeSyntheticWeights } from './synthetic-weights.ts';

const dir = process.env['CONTOUR_SYNTHETIC_DIR'] ?? join(tmpdir(), 'contour-synthetic');
if (process.env['CONTOUR_BENCH_FULLSIZE'] !== '1') {
  console.log(
    `skipped: set CONTOUR_BENCH_FULLSIZE=1 to generate with full-size SD1.5 + two ControlNets in a worker (writes ~6 GB of synthetic weights to ${dir}; tens of minutes on CPU)`,
  );
  process.exit(0);
}
const sizes = (process.env['BENCH_SIZES'] ?? '256,512').split(',').map(Number);
const steps = Number(process.env['BENCH_STEPS'] ?? 20);
const engine = process.env['CONTOUR_ENGINE'] ?? 'onnxruntime';
const controlnetCounts = (process.env['BENCH_CONTROLNETS'] ?? '1,2').split(',').map(Number);

const needed = ['sd15-single', 'control_v11p_sd15_canny', 'control_v11p_sd15_canny.pth'];
const missing = needed.filter(
  (name) =>
    !existsSync(join(dir, name === 'sd15-single' ? 'sd15-single/v1-5-pruned-emaonly.safetensors' : name)),
);
if (missing.length) await writeSyntheticWeights(dir, missing);

const config = join(dir, 'models.json');
await writeFile(
  config,
  JSON.stringify({
    base: {
      path: join(dir, 'sd15-single', 'v1-5-pruned-emaonly.safetensors'),
      layout: 'single-file',
      name: 'sd15-synthetic',
    },
    heads: {
      canny: join(dir, 'control_v11p_sd15_canny.pth'),
      scribble: join(dir, 'control_v11p_sd15_canny'),
    },
  }),
);

const started = performance.now();
const worker = await startWorkerProcess(
  { CONTOUR_MODEL_CONFIG: config, CONTOUR_ENGINE: engine, CONTOUR_MAX_BATCH: '1' },
  { readyTimeoutMs: 30 * 60_000 },
);
const url = worker.url;
const rssGib = async () => {
  const status = await readFile(`/proc/${worker.child.pid}/status`, 'utf8').catch(() => '');
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 2 ** 20, peak: kib('VmHWM') / 2 ** 20 };
};
const ready = await rssGib();
console.log(
  `ready engine=${engine} seconds=${((performance.now() - started) / 1000).toFixed(1)} rss_gib=${ready.rss.toFixed(2)} peak_rss_gib=${ready.peak.toFixed(2)}`,
);
for (const line of worker
  .output()
  .split('\n')
  .filter((l) => /engine|load/i.test(l)))
  console.log(`  worker: ${line}`);

const images = await startImageServer({ drawing: drawingPng(512) });
try {
  for (const size of sizes) {
    for (const heads of [['canny'], ['canny', 'scribble']].filter((h) =>
      controlnetCounts.includes(h.length),
    )) {
      // Full size on CPU takes minutes per image: a deadline far beyond the 5 min of the test helper's jobs.
      const base = makeJob(images, {
        width: size,
        height: size,
        steps,
        deadline_at: Date.now() + 3 * 3600_000,
      });
      const job = {
        ...base,
        controls: heads.map((type) => ({
          ...base.controls[0]!,
          type,
          params: type === 'canny' ? { low: 100, high: 200 } : {},
        })),
      };
      const t0 = performance.now();
      const messages: WorkerMessage[] = await readMessages(await postJob(url, job));
      const last = messages.at(-1) as { type: string; timings_ms?: Record<string, number> };
      if (last.type !== 'result') throw new Error(`job failed: ${JSON.stringify(last).slice(0, 400)}`);
      const seconds = (performance.now() - t0) / 1000;
      const denoise = (last.timings_ms?.['denoise'] ?? 0) / 1000;
      const memory = await rssGib();
      console.log(
        `generate size=${size} controlnets=${heads.length} steps=${steps} image_s=${seconds.toFixed(1)} s_per_step=${(denoise / steps).toFixed(2)} rss_gib=${memory.rss.toFixed(2)} peak_rss_gib=${memory.peak.toFixed(2)} timings=${JSON.stringify(last.timings_ms)}`,
      );
    }
  }
} finally {
  await images.close();
  await worker.kill();
}
