import { lineChartPng, type Series } from '../training/plot.ts';
import { batchSeconds, type ServiceProfile } from './profile.ts';
import { type ArrivalPattern, type JobClass, type PoolConfig, type SimResult, simulate } from './simulate.ts';

/**
 * Pool defaults matching infra/k8s and the worker's defaults (CONTOUR_MAX_BATCH 4, queue 16). KEDA target 2 jobs
 * per worker with a 15-minute scale-down window: with target 4 (a full batch) partial batches make the backlog
 * under-count the work, the pool shrinks too far, and the 180 s cold start then overshoots (docs/SCALING.md).
 */
export const DEFAULT_POOL: PoolConfig = {
  mode: 'pull',
  min_workers: 1,
  max_workers: 1000,
  autoscale: true,
  target_per_worker: 2,
  max_batch: 4,
  worker_queue: 16,
  poll_idle_s: 1,
  polling_s: 10,
  scale_down_window_s: 900,
  scale_up_factor_per_30s: 2,
  provision_s: 180,
  gpu_hour_usd: 2.5,
  service: { distribution: 'lognormal', cv: 0.1 },
};

/**
 * KEDA targetValue (backlog jobs per worker) by mode, as infra/k8s ships them. Pull workers fill micro-batches
 * from the shared queue, so about 2 jobs each is the steady state; push spreads jobs (least busy first), so each
 * worker holds about 1, and a target of 2 would halve the pool whenever the queues are empty (it oscillates).
 */
export const KEDA_TARGET: Record<PoolConfig['mode'], number> = { push: 1, pull: 2 };

/** The default job mix: mostly the original apps' 512x512 at 20 DDIM steps. */
export function defaultMix(engine: string): JobClass[] {
  return [
    { weight: 0.7, width: 512, height: 512, steps: 20, sampler: 'ddim', engine, images: 1 },
    { weight: 0.2, width: 512, height: 512, steps: 30, sampler: 'euler_a', engine, images: 1 },
    { weight: 0.1, width: 768, height: 768, steps: 20, sampler: 'ddim', engine, images: 1 },
  ];
}

/** A recommended fixed pool for one steady rate. */
export interface Sizing {
  per_min: number;
  mode: PoolConfig['mode'];
  gpus: number;
  result: SimResult;
}

/**
 * The fewest always-on GPUs that keep the p95 wait at or under `targetP95WaitS` at a steady `perMin` images per
 * minute (binary search over pool sizes, each a seeded 30-minute run after a 5-minute warm-up).
 */
export function sizePool(options: {
  perMin: number;
  mode: PoolConfig['mode'];
  classes: JobClass[];
  profile: ServiceProfile;
  pool: PoolConfig;
  targetP95WaitS: number;
  seed: number;
}): Sizing {
  const run = (gpus: number) =>
    simulate({
      seed: options.seed,
      duration_s: 35 * 60,
      warmup_s: 5 * 60,
      drain_s: 15 * 60,
      arrivals: { kind: 'steady', per_min: options.perMin },
      classes: options.classes,
      pool: { ...options.pool, mode: options.mode, autoscale: false, min_workers: gpus, max_workers: gpus },
      profile: options.profile,
    });
  const ok = (result: SimResult) =>
    result.failed === 0 && result.unfinished === 0 && result.wait.p95 <= options.targetP95WaitS;
  // Start at 80 % of the offered load at full batches (surely too few), then grow by 25 % until one is enough.
  const totalWeight = options.classes.reduce((sum, c) => sum + c.weight, 0);
  const gpuSecondsPerImage = options.classes.reduce(
    (sum, c) =>
      sum +
      (c.weight / totalWeight) *
        (batchSeconds(options.profile, c, options.pool.max_batch) / options.pool.max_batch),
    0,
  );
  let low = Math.max(1, Math.floor(0.8 * (options.perMin / 60) * gpuSecondsPerImage));
  let high = low;
  let best = run(high);
  while (!ok(best)) {
    low = high + 1;
    high = Math.max(high + 1, Math.ceil(high * 1.25));
    best = run(high);
    if (high > 100_000) throw new Error('no pool size meets the target');
  }
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    const result = run(mid);
    if (ok(result)) {
      high = mid;
      best = result;
    } else low = mid + 1;
  }
  return { per_min: options.perMin, mode: options.mode, gpus: high, result: best };
}

/** One configuration of a comparison. */
export interface Variant {
  name: string;
  pool: PoolConfig;
}

/** Runs the same arrivals on each variant. */
export function compare(options: {
  arrivals: ArrivalPattern;
  durationS: number;
  classes: JobClass[];
  profile: ServiceProfile;
  variants: Variant[];
  seed: number;
}): { name: string; result: SimResult }[] {
  return options.variants.map((variant) => ({
    name: variant.name,
    result: simulate({
      seed: options.seed,
      duration_s: options.durationS,
      warmup_s: 0,
      arrivals: options.arrivals,
      classes: options.classes,
      pool: variant.pool,
      profile: options.profile,
    }),
  }));
}

const fixed = (value: number, digits = 1) => value.toFixed(digits);

/** A Markdown table of sizings. */
export function sizingTable(rows: readonly Sizing[], gpuHourUsd: number): string {
  const lines = [
    '| images/min | mode | GPUs | wait p50 / p95 / p99 (s) | total p95 (s) | utilisation | $ per 1,000 images |',
    '| ---: | --- | ---: | --- | ---: | ---: | ---: |',
  ];
  for (const { per_min, mode, gpus, result } of rows) {
    lines.push(
      `| ${per_min.toLocaleString('en-US')} | ${mode} | ${gpus} | ${fixed(result.wait.p50)} / ${fixed(result.wait.p95)} / ${fixed(result.wait.p99)} | ${fixed(result.total.p95)} | ${Math.round(result.utilisation * 100)} % | ${fixed((gpus * gpuHourUsd * 1000) / (per_min * 60), 3)} |`,
    );
  }
  return lines.join('\n');
}

/** A Markdown table comparing variants. */
export function comparisonTable(rows: readonly { name: string; result: SimResult }[]): string {
  const lines = [
    '| variant | jobs | failed | wait p50 / p95 / p99 (s) | total p50 / p95 / p99 (s) | GPU-hours | mean / peak GPUs | $ per 1,000 images |',
    '| --- | ---: | ---: | --- | --- | ---: | --- | ---: |',
  ];
  for (const { name, result: r } of rows) {
    lines.push(
      `| ${name} | ${r.jobs.toLocaleString('en-US')} | ${r.failed} | ${fixed(r.wait.p50)} / ${fixed(r.wait.p95)} / ${fixed(r.wait.p99)} | ${fixed(r.total.p50)} / ${fixed(r.total.p95)} / ${fixed(r.total.p99)} | ${fixed(r.gpu_hours)} | ${fixed(r.mean_workers)} / ${r.peak_workers} | ${fixed(r.cost_per_1000_images, 3)} |`,
    );
  }
  return lines.join('\n');
}

const COLOURS: readonly (readonly [number, number, number])[] = [
  [31, 119, 180],
  [214, 39, 40],
  [44, 160, 44],
  [148, 103, 189],
  [255, 127, 14],
];

/** PNG: GPUs in the pool over time (hours) for each variant. */
export function workersPlot(rows: readonly { name: string; result: SimResult }[], title: string): Uint8Array {
  const series: Series[] = rows.map(({ name, result }, i) => ({
    label: name,
    colour: COLOURS[i % COLOURS.length]!,
    points: result.timeline.map((p) => ({ x: p.t / 3600, y: p.workers })),
  }));
  const peak = Math.max(1, ...rows.map((r) => r.result.peak_workers));
  return lineChartPng(series, { width: 800, height: 420, yMin: 0, yMax: Math.ceil(peak * 1.1), title });
}
