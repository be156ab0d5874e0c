import { describe, expect, it } from 'vitest';
import { erlangC, mmcMeanWait } from './erlang.ts';
import { batchSeconds, DEFAULT_PROFILE, profileFromBench, type ServiceProfile } from './profile.ts';
import { type PoolConfig, type Scenario, simulate } from './simulate.ts';

/** One engine whose single-image batch takes exactly `meanS` on average (steps 1, no fixed part). */
const flatProfile = (meanS: number): ServiceProfile => ({
  source: 'test',
  engines: {
    flat: {
      fixed_s: 0,
      points: [{ width: 512, height: 512, steps: 1, batch1_s: meanS, batch4_s: 2 * meanS }],
    },
  },
});

const basePool: PoolConfig = {
  mode: 'pull',
  min_workers: 4,
  max_workers: 4,
  autoscale: false,
  target_per_worker: 4,
  max_batch: 1,
  worker_queue: 16,
  poll_idle_s: 0,
  polling_s: 15,
  scale_down_window_s: 300,
  scale_up_factor_per_30s: 2,
  provision_s: 120,
  gpu_hour_usd: 2,
  service: { distribution: 'exponential', cv: 1 },
};

const flatClass = {
  weight: 1,
  width: 512,
  height: 512,
  steps: 1,
  sampler: 'ddim',
  engine: 'flat',
  images: 1,
};

describe('capacity simulator', () => {
  it('reproduces M/M/4 at 80 % load: mean wait within 5 % of Erlang C (and P(wait) within 0.02)', () => {
    // lambda = 0.32 jobs/s, mu = 0.1/s (10 s mean service), c = 4 -> rho = 0.8, Wq = C(4, 3.2) / (c mu - lambda).
    const lambda = 0.32;
    const analytic = mmcMeanWait(4, lambda, 0.1);
    // The same closed form evaluated independently (Python, summation form): C = 0.596432, Wq = 7.455406 s.
    expect(analytic).toBeCloseTo(7.455406, 5);
    expect(erlangC(4, 3.2)).toBeCloseTo(0.596432, 5);
    // One run's mean wait wanders by +-4 % (waits are strongly correlated at 80 % load): pool four seeded runs
    // of 250 simulated hours each (~1.15 M jobs).
    const runs = [1, 2, 3, 4].map((seed) =>
      simulate({
        seed,
        duration_s: 900_000,
        warmup_s: 5_000,
        arrivals: { kind: 'steady', per_min: lambda * 60 },
        classes: [flatClass],
        pool: basePool,
        profile: flatProfile(10),
      }),
    );
    const jobs = runs.reduce((sum, r) => sum + r.jobs, 0);
    const pooled = (pick: (r: (typeof runs)[number]) => number) =>
      runs.reduce((sum, r) => sum + pick(r) * r.jobs, 0) / jobs;
    const result = {
      wait: { mean: pooled((r) => r.wait.mean) },
      p_wait: pooled((r) => r.p_wait),
      total: { mean: pooled((r) => r.total.mean) },
    };
    expect(jobs).toBeGreaterThan(1_000_000);
    expect(Math.abs(result.wait.mean - analytic) / analytic).toBeLessThan(0.05);
    expect(Math.abs(result.p_wait - erlangC(4, 3.2))).toBeLessThan(0.02);
    expect(result.total.mean).toBeCloseTo(analytic + 10, 0);
  });

  it('Erlang C matches known values', () => {
    expect(erlangC(1, 0.5)).toBeCloseTo(0.5, 10); // M/M/1: P(wait) = rho
    expect(erlangC(2, 1)).toBeCloseTo(1 / 3, 10);
    expect(mmcMeanWait(1, 0.5, 1)).toBeCloseTo(1, 10); // rho / (mu - lambda)
  });

  it('is seeded: the same scenario gives the same numbers, another seed different ones', () => {
    const scenario: Scenario = {
      seed: 1,
      duration_s: 3600,
      warmup_s: 0,
      arrivals: { kind: 'bursts', base_per_min: 30, burst_per_min: 120, every_min: 20, length_min: 3 },
      classes: [{ ...flatClass, engine: 'tfjs-gpu', steps: 20 }],
      pool: { ...basePool, mode: 'push', service: { distribution: 'lognormal', cv: 0.1 }, max_batch: 4 },
      profile: DEFAULT_PROFILE,
    };
    const a = simulate(scenario);
    expect(simulate(scenario)).toEqual(a);
    expect(simulate({ ...scenario, seed: 2 }).wait).not.toEqual(a.wait);
  });

  it('batch times interpolate the profile in pixels and grow with the measured batch cost', () => {
    const shape = { width: 512, height: 512, steps: 20, sampler: 'ddim', engine: 'tfjs-gpu' };
    expect(batchSeconds(DEFAULT_PROFILE, shape, 1)).toBeCloseTo(6.0, 6);
    expect(batchSeconds(DEFAULT_PROFILE, shape, 4)).toBeCloseTo(19.0, 6);
    expect(batchSeconds(DEFAULT_PROFILE, { ...shape, steps: 40 }, 1)).toBeCloseTo(0.6 + 5.4 * 2, 6);
    expect(batchSeconds(DEFAULT_PROFILE, { ...shape, sampler: 'heun' }, 1)).toBeCloseTo(0.6 + 5.4 * 2, 6);
    const mid = batchSeconds(DEFAULT_PROFILE, { ...shape, width: 640, height: 640 }, 1);
    expect(mid).toBeGreaterThan(6.0);
    expect(mid).toBeLessThan(14.0);
    const fromBench = profileFromBench([
      {
        backend: 'wasm',
        model: 'random',
        width: 256,
        height: 256,
        steps: 20,
        max_batch: 1,
        jobs: 4,
        wall_s: 40,
      },
      {
        backend: 'wasm',
        model: 'random',
        width: 256,
        height: 256,
        steps: 20,
        max_batch: 4,
        jobs: 4,
        wall_s: 30,
      },
    ]);
    expect(fromBench.engines['wasm']!.points[0]).toMatchObject({ batch1_s: 10, batch4_s: 30 });
  });

  it('micro-batching raises what a fixed pool sustains; scale-to-zero saves GPU hours but adds the cold start', () => {
    const scenario: Scenario = {
      seed: 3,
      duration_s: 4 * 3600,
      warmup_s: 600,
      arrivals: { kind: 'steady', per_min: 30 },
      classes: [{ ...flatClass, engine: 'tfjs-gpu', steps: 20 }],
      pool: { ...basePool, min_workers: 3, max_workers: 3, service: { distribution: 'lognormal', cv: 0.1 } },
      profile: DEFAULT_PROFILE,
    };
    // 30 images/min x 6 s = 3 erlangs on 3 GPUs: unbatched it cannot keep up, batched (4 in 19 s) it can.
    const single = simulate(scenario);
    const batched = simulate({ ...scenario, pool: { ...scenario.pool, max_batch: 4 } });
    expect(batched.wait.p95).toBeLessThan(single.wait.p95 / 5);

    const sparse: Scenario = {
      ...scenario,
      arrivals: { kind: 'bursts', base_per_min: 0, burst_per_min: 20, every_min: 60, length_min: 5 },
      pool: { ...scenario.pool, max_batch: 4, autoscale: true, max_workers: 8, provision_s: 180 },
    };
    const warm = simulate({ ...sparse, pool: { ...sparse.pool, min_workers: 1 } });
    const zero = simulate({ ...sparse, pool: { ...sparse.pool, min_workers: 0 } });
    expect(zero.gpu_hours).toBeLessThan(warm.gpu_hours);
    expect(zero.wait.p99).toBeGreaterThan(warm.wait.p99);
    expect(zero.wait.p99).toBeGreaterThan(180);
  });
});
