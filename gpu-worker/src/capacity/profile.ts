/**
 * Service times for the capacity simulator: how long one micro-batch takes on one GPU, by engine, size, steps
 * and sampler. From measurements (`gpu-worker/bench/service.bench.ts` with `BENCH_JSON=<file>`) or a profile
 * file of the same shape as {@link DEFAULT_PROFILE}.
 */

/** One measured (or given) point: a job of `steps` at `width` x `height`, alone and in a batch of 4. */
export interface ProfilePoint {
  width: number;
  height: number;
  steps: number;
  /** Wall seconds of one job run alone. */
  batch1_s: number;
  /** Wall seconds of a micro-batch of 4 such jobs (absent: batching gains nothing). */
  batch4_s?: number;
}

/** Service times of one engine (backend + precision). */
export interface EngineProfile {
  /** Per-batch cost that does not scale with steps (text encoder, VAE decode, encoding), seconds. */
  fixed_s: number;
  points: ProfilePoint[];
}

/** A service-time profile: engines by name, and where the numbers come from. */
export interface ServiceProfile {
  source: string;
  engines: Record<string, EngineProfile>;
}

/** UNet evaluations per step by sampler (first-order samplers 1, Heun-type 2); CFG is inside the points. */
export const SAMPLER_EVALS: Record<string, number> = {
  ddim: 1,
  euler: 1,
  euler_a: 1,
  dpmpp_2m: 1,
  heun: 2,
  dpm2: 2,
};

/**
 * The built-in profile. GIVEN, not measured here (this repository's CI has no GPU): SD 1.5 + one ControlNet
 * head, classifier-free guidance, on one datacenter GPU (A100/H100 class); `tfjs-gpu` is TensorFlow.js on
 * tensorflow-gpu in fp32, `onnx-cuda-fp16` an fp16 engine. Replace it with your own numbers: run
 * `BENCH_JSON=bench.json npx tsx gpu-worker/bench/service.bench.ts` on the target GPU and pass
 * `--profile bench.json`.
 */
export const DEFAULT_PROFILE: ServiceProfile = {
  source: 'given estimate (SD1.5 + 1 ControlNet, CFG, A100/H100 class); replace with BENCH_JSON measurements',
  engines: {
    'tfjs-gpu': {
      fixed_s: 0.6,
      points: [
        { width: 512, height: 512, steps: 20, batch1_s: 6.0, batch4_s: 19.0 },
        { width: 768, height: 768, steps: 20, batch1_s: 14.0, batch4_s: 50.0 },
      ],
    },
    'onnx-cuda-fp16': {
      fixed_s: 0.25,
      points: [
        { width: 512, height: 512, steps: 20, batch1_s: 2.0, batch4_s: 6.0 },
        { width: 768, height: 768, steps: 20, batch1_s: 4.6, batch4_s: 15.5 },
      ],
    },
  },
};

/** One row of `service.bench.ts` JSON output. */
export interface BenchRow {
  backend: string;
  model: string;
  width: number;
  height: number;
  steps: number;
  max_batch: number;
  jobs: number;
  wall_s: number;
}

/** Builds a profile from benchmark rows: batch-1 and batch-4 runs of the same size become one point. */
export function profileFromBench(rows: readonly BenchRow[], fixedS = 0.5): ServiceProfile {
  const engines: Record<string, EngineProfile> = {};
  for (const row of rows.filter((r) => r.max_batch === 1)) {
    engines[row.backend] ??= { fixed_s: fixedS, points: [] };
    const engine = engines[row.backend]!;
    const batched = rows.find(
      (r) =>
        r.backend === row.backend && r.width === row.width && r.height === row.height && r.max_batch === 4,
    );
    engine.points.push({
      width: row.width,
      height: row.height,
      steps: row.steps,
      batch1_s: row.wall_s / row.jobs,
      ...(batched ? { batch4_s: batched.wall_s / (batched.jobs / 4) } : {}),
    });
  }
  return { source: `service.bench.ts (${rows[0]?.model ?? '?'} model)`, engines };
}

/** Reads a profile file: a {@link ServiceProfile} or an array of {@link BenchRow}. */
export function parseProfile(json: unknown): ServiceProfile {
  if (Array.isArray(json)) return profileFromBench(json as BenchRow[]);
  const profile = json as ServiceProfile;
  if (!profile?.engines || Object.keys(profile.engines).length === 0) {
    throw new Error('a profile needs "engines" with at least one engine');
  }
  return profile;
}

/** What a job asks of the GPU. */
export interface JobShape {
  width: number;
  height: number;
  steps: number;
  sampler: string;
  engine: string;
  images: number;
}

/**
 * Mean seconds of one micro-batch holding `images` images of one shape: the fixed part, plus steps x the
 * per-step time at that size (interpolated linearly in pixels between the two nearest points), scaled for the
 * batch by the measured batch-of-4 cost (linear between 1 and 4 images, extrapolated beyond).
 */
export function batchSeconds(
  profile: ServiceProfile,
  shape: Omit<JobShape, 'images'>,
  images: number,
): number {
  const engine = profile.engines[shape.engine];
  if (!engine) throw new Error(`the profile has no engine "${shape.engine}"`);
  const pixels = shape.width * shape.height;
  const points = [...engine.points].sort((a, b) => a.width * a.height - b.width * b.height);
  const perStep = (p: ProfilePoint) => Math.max(0, p.batch1_s - engine.fixed_s) / p.steps;
  // Batch growth of the step part, so that a batch of 4 takes exactly batch4_s.
  const growth = (p: ProfilePoint) =>
    p.batch4_s ? ((p.batch4_s - engine.fixed_s) / Math.max(1e-9, p.batch1_s - engine.fixed_s) - 1) / 3 : 1;
  let step: number;
  let g: number;
  const lower = [...points].reverse().find((p) => p.width * p.height <= pixels) ?? points[0]!;
  const upper = points.find((p) => p.width * p.height >= pixels) ?? points.at(-1)!;
  const lp = lower.width * lower.height;
  const up = upper.width * upper.height;
  if (lower === upper || up === lp) {
    // Outside the measured range: per-step time proportional to pixels.
    step = perStep(lower) * (pixels / lp);
    g = growth(lower);
  } else {
    const t = (pixels - lp) / (up - lp);
    step = perStep(lower) + t * (perStep(upper) - perStep(lower));
    g = growth(lower) + t * (growth(upper) - growth(lower));
  }
  const evals = SAMPLER_EVALS[shape.sampler] ?? 1;
  return engine.fixed_s + step * shape.steps * evals * (1 + (Math.max(1, images) - 1) * g);
}
