/**
 * `npm run simulate`: sizes the GPU pool with the capacity simulator (see docs/SCALING.md).
 *
 *   npm run simulate                                   # defaults: tfjs-gpu engine, built-in (given) profile
 *   npm run simulate -- --profile bench.json --engine wasm --rates 100,1000 --target-p95-wait 5
 *   npm run simulate -- --day-rate 2000 --gpu-hour-usd 3.2 --provision-s 240 --out capacity-report
 *
 * Prints (and writes to <out>/report.md): the fewest always-on GPUs per steady rate for push and pull, then a
 * diurnal day and a sparse bursty day under the autoscaler for push/pull x warm pool/scale-to-zero; writes
 * <out>/capacity.png (GPUs over the diurnal day).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_PROFILE, parseProfile } from './profile.ts';
import {
  compare,
  comparisonTable,
  DEFAULT_POOL,
  defaultMix,
  KEDA_TARGET,
  sizePool,
  sizingTable,
  workersPlot,
} from './report.ts';
import type { PoolConfig } from './simulate.ts';

const { values } = parseArgs({
  options: {
    profile: { type: 'string' },
    engine: { type: 'string', default: 'tfjs-gpu' },
    rates: { type: 'string', default: '100,1000,10000' },
    'target-p95-wait': { type: 'string', default: '10' },
    'day-rate': { type: 'string', default: '1000' },
    'gpu-hour-usd': { type: 'string', default: String(DEFAULT_POOL.gpu_hour_usd) },
    'provision-s': { type: 'string', default: String(DEFAULT_POOL.provision_s) },
    'max-batch': { type: 'string', default: String(DEFAULT_POOL.max_batch) },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'capacity-report' },
  },
});

const profile = values.profile
  ? parseProfile(JSON.parse(await readFile(values.profile, 'utf8')))
  : DEFAULT_PROFILE;
const classes = defaultMix(values.engine);
const seed = Number(values.seed);
const pool: PoolConfig = {
  ...DEFAULT_POOL,
  gpu_hour_usd: Number(values['gpu-hour-usd']),
  provision_s: Number(values['provision-s']),
  max_batch: Number(values['max-batch']),
};
const target = Number(values['target-p95-wait']);
const out: string[] = [];
const say = (line = '') => {
  out.push(line);
  console.log(line);
};

say(`# Capacity report (seed ${seed})`);
say();
say(
  `Profile: ${profile.source}; engine ${values.engine}; mix: ${classes.map((c) => `${Math.round(c.weight * 100)} % ${c.width}x${c.height}/${c.steps} ${c.sampler}`).join(', ')}.`,
);
say(
  `Pool: micro-batch ${pool.max_batch}, push queue ${pool.worker_queue}/worker, pull idle poll ${pool.poll_idle_s} s, KEDA target ${KEDA_TARGET.push} (push) / ${KEDA_TARGET.pull} (pull) jobs/worker every ${pool.polling_s} s, scale-down window ${pool.scale_down_window_s} s, cold start ${pool.provision_s} s, $${pool.gpu_hour_usd}/GPU-hour.`,
);
say();
say(`## Always-on pool per steady rate (p95 wait <= ${target} s)`);
say();
const sizings = values.rates
  .split(',')
  .flatMap((rate) =>
    (['push', 'pull'] as const).map((mode) =>
      sizePool({ perMin: Number(rate), mode, classes, profile, pool, targetP95WaitS: target, seed }),
    ),
  );
say(sizingTable(sizings, pool.gpu_hour_usd));

const dayRate = Number(values['day-rate']);
const variants = (minWarm: number) => [
  {
    name: `push, warm pool (min ${minWarm})`,
    pool: { ...pool, mode: 'push' as const, min_workers: minWarm, target_per_worker: KEDA_TARGET.push },
  },
  {
    name: `pull, warm pool (min ${minWarm})`,
    pool: { ...pool, mode: 'pull' as const, min_workers: minWarm, target_per_worker: KEDA_TARGET.pull },
  },
  // Push cannot scale to zero (the edge needs an address that answers); shown for the cost of trying.
  {
    name: 'push, scale to zero',
    pool: { ...pool, mode: 'push' as const, min_workers: 0, target_per_worker: KEDA_TARGET.push },
  },
  {
    name: 'pull, scale to zero',
    pool: { ...pool, mode: 'pull' as const, min_workers: 0, target_per_worker: KEDA_TARGET.pull },
  },
];
const troughGpus = sizings.find((s) => s.mode === 'pull' && s.per_min >= dayRate * 0.4)?.gpus ?? 1;
const day = compare({
  arrivals: { kind: 'diurnal', mean_per_min: dayRate, amplitude: 0.6 },
  durationS: 24 * 3600,
  classes,
  profile,
  variants: variants(Math.max(1, Math.round(troughGpus / 2))),
  seed,
});
say();
say(`## A diurnal day: mean ${dayRate} images/min, +-60 % (peak 14:00), autoscaled`);
say();
say(comparisonTable(day));
const sparse = compare({
  arrivals: { kind: 'bursts', base_per_min: 0, burst_per_min: 60, every_min: 120, length_min: 10 },
  durationS: 24 * 3600,
  classes,
  profile,
  variants: variants(1),
  seed,
});
say();
say('## A sparse day: a 10-minute burst of 60 images/min every 2 hours, nothing between, autoscaled');
say();
say(comparisonTable(sparse));

await mkdir(values.out, { recursive: true });
await writeFile(path.join(values.out, 'report.md'), `${out.join('\n')}\n`);
await writeFile(
  path.join(values.out, 'capacity.png'),
  workersPlot(day, `GPUS OVER A DIURNAL DAY (HOURS), MEAN ${dayRate} IMAGES PER MIN`),
);
console.log(`\nwrote ${path.join(values.out, 'report.md')} and ${path.join(values.out, 'capacity.png')}`);
