/**
 * Worker throughput with a built-in model: a real worker process (the backend CONTOUR_TF_BACKEND picks, wasm
 * by default here), N jobs of 20 steps submitted at once, images per minute from the first submit to the last
 * result; once with micro-batching off (CONTOUR_MAX_BATCH=1) and once on (4, no pixel cap). These numbers set
 * the default CONTOUR_MAX_BATCH_PIXELS (see src/service/README.md).
 *
 *   npx tsx gpu-worker/bench/service.bench.ts            # 256 and 512, 4 jobs each
 *   BENCH_SIZES=256 BENCH_JOBS=8 npx tsx gpu-worker/bench/service.bench.ts
 *   BENCH_MODEL=circles npx tsx gpu-worker/bench/service.bench.ts   # the default trained model (samples at 64x64)
 *
 * BENCH_JSON=<file> also writes the rows as JSON, the service-time profile `npm run simulate -- --profile <file>`
 * reads (docs/SCALING.md).
 *
 * BENCH_MODEL defaults to `random` (SD1.5's layout, sampled at the requested size): the batching defaults were
 * set from it.
 */
import {
  drawingPng,
  makeJob,
  postJob,
  readMessages,
  startImageServer,
  startWorkerProcess,
} from '../test/service/helpers.ts';

const sizes = (process.env['BENCH_SIZES'] ?? '256,512').split(',').map(Number);
const jobsPerRun = Number(process.env['BENCH_JOBS'] ?? 4);
const steps = Number(process.env['BENCH_STEPS'] ?? 20);
const backend = process.env['CONTOUR_TF_BACKEND'] ?? 'wasm';
const model = process.env['BENCH_MODEL'] ?? 'random';

const images = await startImageServer({ drawing: drawingPng(512) });
const rows: string[] = [];
const jsonRows: object[] = [];
try {
  for (const size of sizes) {
    for (const maxBatch of [1, 4]) {
      const worker = await startWorkerProcess({
        CONTOUR_MAX_BATCH: String(maxBatch),
        // No pixel cap: this measures what batching itself does at each size.
        CONTOUR_MAX_BATCH_PIXELS: String(64 * 1024 * 1024),
        CONTOUR_QUEUE_SIZE: String(jobsPerRun + 1),
        CONTOUR_TF_BACKEND: backend,
        CONTOUR_BUILTIN_MODEL: model,
      });
      try {
        // Warm-up: loads the head and compiles kernels at this size.
        await readMessages(
          await postJob(worker.url, makeJob(images, { width: size, height: size, steps: 1 })),
        );
        const started = performance.now();
        const runs = await Promise.all(
          Array.from({ length: jobsPerRun }, async (_, i) =>
            readMessages(
              await postJob(worker.url, makeJob(images, { width: size, height: size, steps, seed: i })),
            ),
          ),
        );
        const seconds = (performance.now() - started) / 1000;
        const failed = runs.filter((messages) => messages.at(-1)?.type !== 'result').length;
        if (failed)
          throw new Error(`${failed} jobs failed: ${JSON.stringify(runs[0]?.at(-1)).slice(0, 300)}`);
        const perImage = runs.map((m) => (m.at(-1) as { timings_ms: Record<string, number> }).timings_ms);
        const denoise = perImage.reduce((sum, t) => sum + (t['denoise'] ?? 0), 0) / perImage.length;
        rows.push(
          `${`${size}x${size}`.padEnd(9)} ${String(maxBatch).padStart(9)} ${String(jobsPerRun).padStart(4)} ${seconds.toFixed(1).padStart(8)} ${((jobsPerRun * 60) / seconds).toFixed(2).padStart(10)} ${(denoise / 1000).toFixed(1).padStart(11)}`,
        );
        console.log(rows.at(-1));
        jsonRows.push({
          backend,
          model,
          width: size,
          height: size,
          steps,
          max_batch: maxBatch,
          jobs: jobsPerRun,
          wall_s: seconds,
        });
      } finally {
        await worker.kill();
      }
    }
  }
} finally {
  await images.close();
}
console.log(
  `\nbuilt-in model ${model}, ${steps} steps, backend ${backend}, 1 canny control, guidance 9 (CFG batch x2)`,
);
console.log('size      max_batch jobs   wall_s images/min denoise_s/job');
for (const row of rows) console.log(row);
if (process.env['BENCH_JSON']) {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(process.env['BENCH_JSON'], `${JSON.stringify(jsonRows, null, 2)}\n`);
  console.log(`wrote ${process.env['BENCH_JSON']}`);
}
