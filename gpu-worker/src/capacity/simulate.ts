import { batchSeconds, type JobShape, type ServiceProfile } from './profile.ts';
import { Random } from './random.ts';

/**
 * A discrete-event simulation of the GPU pool: Poisson arrivals (steady, diurnal or bursts), a job mix, micro-
 * batching, push dispatch (the edge's least-busy choice over per-worker queues, retries with the queue's
 * backoff when every worker is full) or pull dispatch (one central queue, idle workers poll), and a KEDA-like
 * autoscaler (polling interval, scale-down window, provisioning/cold-start delay). Seeded: the same inputs give
 * the same numbers.
 */

/** How requests arrive. Rates are images per minute (a job of N images counts N). */
export type ArrivalPattern =
  | { kind: 'steady'; per_min: number }
  | { kind: 'diurnal'; mean_per_min: number; amplitude: number; period_h?: number; peak_h?: number }
  | { kind: 'bursts'; base_per_min: number; burst_per_min: number; every_min: number; length_min: number };

/** One kind of job in the mix, chosen with probability proportional to `weight`. */
export interface JobClass extends JobShape {
  weight: number;
}

/** The pool and its autoscaler. */
export interface PoolConfig {
  mode: 'push' | 'pull';
  min_workers: number;
  max_workers: number;
  /** Autoscale on backlog (queued + running jobs): desired = ceil(backlog / target_per_worker). */
  autoscale: boolean;
  target_per_worker: number;
  /** Most images in one micro-batch (CONTOUR_MAX_BATCH x images per job). */
  max_batch: number;
  /** Push: jobs that may wait on one worker (CONTOUR_QUEUE_SIZE) before it answers 429. */
  worker_queue: number;
  /** Pull: wait after an empty pull (CONTOUR_PULL_IDLE_MS); 0 = a waiting job is taken at once. */
  poll_idle_s: number;
  /** Autoscaler polling interval (KEDA pollingInterval). */
  polling_s: number;
  /** Scale down only to the highest desired count of this window (HPA stabilization). */
  scale_down_window_s: number;
  /** HPA scale-up policy: at most this factor more replicas per 30 s (infra/k8s: Percent 100 = 2). */
  scale_up_factor_per_30s: number;
  /** From the scale-up decision to a ready worker: node, image pull, model load (the cold start). */
  provision_s: number;
  gpu_hour_usd: number;
  /** Batch time spread around the profile's mean. */
  service: { distribution: 'lognormal' | 'exponential' | 'deterministic'; cv: number };
}

/** One simulation run. */
export interface Scenario {
  seed: number;
  /** Arrivals stop after this; queued work still finishes (its latency counts). */
  duration_s: number;
  /** Jobs arriving before this are not measured (the pool warms up). */
  warmup_s: number;
  /** How long after `duration_s` queued work may still finish (default 6 h); what is left counts as unfinished. */
  drain_s?: number;
  arrivals: ArrivalPattern;
  classes: JobClass[];
  pool: PoolConfig;
  profile: ServiceProfile;
}

/** Percentiles of a latency, seconds. */
export interface Latency {
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

/** What a run measured. */
export interface SimResult {
  jobs: number;
  images: number;
  /** Push only: jobs that found no worker after 4 retries (dead-lettered, not charged). */
  failed: number;
  /** Measured jobs still waiting or running when the run stopped (an overloaded pool). */
  unfinished: number;
  wait: Latency;
  /** Fraction of jobs that waited at all (Erlang C for M/M/c). */
  p_wait: number;
  total: Latency;
  gpu_hours: number;
  mean_workers: number;
  peak_workers: number;
  /** Share of the GPU time spent running batches (the rest: idle, polling, cold starts). */
  utilisation: number;
  cost_per_1000_images: number;
  /** Every `polling_s` (at least 60 s): time (s), workers (provisioning + ready), queued jobs. */
  timeline: { t: number; workers: number; queued: number }[];
}

interface Job {
  cls: number;
  images: number;
  arrival: number;
  attempts: number;
}

/** Jobs waiting, one FIFO per class; batches take the class whose head waited longest. */
class ClassQueues {
  private readonly fifos: { items: Job[]; head: number }[];
  size = 0;

  constructor(classes: number) {
    this.fifos = Array.from({ length: classes }, () => ({ items: [], head: 0 }));
  }

  push(job: Job): void {
    this.fifos[job.cls]!.items.push(job);
    this.size++;
  }

  /** Takes the oldest job and more of its class up to `maxImages` images (at least one job). */
  takeBatch(maxImages: number): Job[] {
    let best: { items: Job[]; head: number } | undefined;
    for (const fifo of this.fifos) {
      if (
        fifo.head < fifo.items.length &&
        (!best || fifo.items[fifo.head]!.arrival < best.items[best.head]!.arrival)
      ) {
        best = fifo;
      }
    }
    if (!best) return [];
    const batch: Job[] = [];
    let images = 0;
    while (best.head < best.items.length) {
      const job = best.items[best.head]!;
      if (batch.length > 0 && images + job.images > maxImages) break;
      batch.push(job);
      images += job.images;
      best.head++;
    }
    if (best.head > 1024 && best.head * 2 > best.items.length) {
      best.items = best.items.slice(best.head);
      best.head = 0;
    }
    this.size -= batch.length;
    return batch;
  }
}

interface Worker {
  id: number;
  state: 'provisioning' | 'ready' | 'draining' | 'gone';
  created: number;
  gone: number;
  running: Job[];
  local: ClassQueues;
  polling: boolean;
  /** Push: the load bucket it is filed under (-1: not dispatchable). */
  bucket: number;
}

type EventKind = 'arrival' | 'done' | 'ready' | 'tick' | 'retry' | 'poll';

/** A binary min-heap of events by time (ties in insertion order). */
class EventQueue {
  private readonly items: { t: number; seq: number; kind: EventKind; ref: unknown }[] = [];
  private seq = 0;

  get length(): number {
    return this.items.length;
  }

  push(t: number, kind: EventKind, ref: unknown = null): void {
    const item = { t, seq: this.seq++, kind, ref };
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p.t < t || (p.t === t && p.seq < item.seq)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  pop(): { t: number; kind: EventKind; ref: unknown } {
    const items = this.items;
    const top = items[0]!;
    const last = items.pop()!;
    if (items.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= items.length) break;
        const r = l + 1;
        let c = l;
        if (
          r < items.length &&
          (items[r]!.t < items[l]!.t || (items[r]!.t === items[l]!.t && items[r]!.seq < items[l]!.seq))
        ) {
          c = r;
        }
        const child = items[c]!;
        if (last.t < child.t || (last.t === child.t && last.seq < child.seq)) break;
        items[i] = child;
        i = c;
      }
      items[i] = last;
    }
    return top;
  }
}

/** Images per second at time `t` (seconds). */
export function arrivalRate(pattern: ArrivalPattern, t: number): number {
  if (pattern.kind === 'steady') return pattern.per_min / 60;
  if (pattern.kind === 'diurnal') {
    const period = (pattern.period_h ?? 24) * 3600;
    const peak = (pattern.peak_h ?? 14) * 3600;
    return (
      (pattern.mean_per_min / 60) *
      Math.max(0, 1 + pattern.amplitude * Math.cos((2 * Math.PI * (t - peak)) / period))
    );
  }
  const inBurst = t % (pattern.every_min * 60) < pattern.length_min * 60;
  return (inBurst ? pattern.burst_per_min : pattern.base_per_min) / 60;
}

function peakRate(pattern: ArrivalPattern): number {
  if (pattern.kind === 'steady') return pattern.per_min / 60;
  if (pattern.kind === 'diurnal') return (pattern.mean_per_min / 60) * (1 + Math.abs(pattern.amplitude));
  return Math.max(pattern.base_per_min, pattern.burst_per_min) / 60;
}

function percentiles(values: number[]): Latency {
  if (values.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { mean: sum / sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** The edge's queue redelivery delay for push mode (5 s doubling, cap 300 s, up to 20 % jitter). */
function pushRetryDelay(attempt: number, random: Random): number {
  return Math.min(300, 5 * 2 ** Math.max(0, attempt - 1)) * (1 + random.uniform() * 0.2);
}

/** Runs one scenario. */
export function simulate(scenario: Scenario): SimResult {
  const { pool, classes, profile } = scenario;
  const random = new Random(scenario.seed);
  const events = new EventQueue();
  const totalWeight = classes.reduce((sum, c) => sum + c.weight, 0);
  const meanImages = classes.reduce((sum, c) => sum + c.weight * c.images, 0) / totalWeight;
  const batchMean = new Map<string, number>();
  const meanBatchSeconds = (cls: number, images: number) => {
    const key = `${cls}:${images}`;
    let mean = batchMean.get(key);
    if (mean === undefined) {
      mean = batchSeconds(profile, classes[cls]!, images);
      batchMean.set(key, mean);
    }
    return mean;
  };
  const sampleService = (mean: number) =>
    pool.service.distribution === 'exponential'
      ? random.exponential(mean)
      : pool.service.distribution === 'deterministic'
        ? mean
        : random.lognormal(mean, pool.service.cv);

  const workers: Worker[] = [];
  /** Workers not yet retired (dispatch and polling look only at these). */
  let live: Worker[] = [];
  const central = new ClassQueues(classes.length);
  let pendingRetries = 0;
  let running = 0;
  const waits: number[] = [];
  const totals: number[] = [];
  let jobs = 0;
  let images = 0;
  let failed = 0;
  let measuredImages = 0;
  let measuredJobs = 0;
  let measuredDone = 0;
  let measuredFailed = 0;
  let busySeconds = 0;
  const timeline: SimResult['timeline'] = [];
  const desiredHistory: { t: number; desired: number }[] = [];
  const end = scenario.duration_s;

  const addWorker = (t: number, ready: boolean) => {
    const worker: Worker = {
      id: workers.length,
      state: ready ? 'ready' : 'provisioning',
      created: t,
      gone: Number.POSITIVE_INFINITY,
      running: [],
      local: new ClassQueues(classes.length),
      polling: false,
      bucket: -1,
    };
    workers.push(worker);
    live.push(worker);
    if (ready) onReady(t, worker);
    else events.push(t + pool.provision_s, 'ready', worker);
  };
  // Push: ready workers with room, filed by load (jobs queued + running), so the least busy is found in O(load).
  const buckets: Set<Worker>[] = Array.from(
    { length: pool.worker_queue + pool.max_batch + 2 },
    () => new Set(),
  );
  const place = (worker: Worker) => {
    if (pool.mode !== 'push') return;
    if (worker.bucket >= 0) buckets[worker.bucket]!.delete(worker);
    worker.bucket = -1;
    if (worker.state !== 'ready' || worker.local.size >= pool.worker_queue) return;
    worker.bucket = Math.min(buckets.length - 1, worker.local.size + worker.running.length);
    buckets[worker.bucket]!.add(worker);
  };
  const active = () => live.filter((w) => w.state === 'provisioning' || w.state === 'ready');
  const queued = () =>
    pool.mode === 'pull' ? central.size : pendingRetries + live.reduce((sum, w) => sum + w.local.size, 0);

  const startBatch = (t: number, worker: Worker, source: ClassQueues): boolean => {
    const batch = source.takeBatch(pool.max_batch);
    if (batch.length === 0) return false;
    worker.running = batch;
    running += batch.length;
    place(worker);
    let batchImages = 0;
    for (const job of batch) {
      batchImages += job.images;
      if (job.arrival >= scenario.warmup_s) waits.push(t - job.arrival);
    }
    const duration = sampleService(meanBatchSeconds(batch[0]!.cls, batchImages));
    if (t >= scenario.warmup_s && t < end) busySeconds += Math.min(duration, end - t);
    events.push(t + duration, 'done', worker);
    return true;
  };

  const retire = (t: number, worker: Worker) => {
    worker.state = 'gone';
    worker.gone = t;
    live = live.filter((w) => w !== worker);
    place(worker);
  };

  /** Pull: an idle worker leases work now, or polls again after the idle wait. */
  const pullNext = (t: number, worker: Worker) => {
    if (worker.state === 'draining') return retire(t, worker);
    if (startBatch(t, worker, central)) return;
    if (pool.poll_idle_s > 0 && !worker.polling) {
      worker.polling = true;
      events.push(t + pool.poll_idle_s, 'poll', worker);
    }
  };

  function onReady(t: number, worker: Worker) {
    if (worker.state !== 'provisioning' && worker.state !== 'ready') return;
    worker.state = 'ready';
    place(worker);
    if (pool.mode === 'pull') pullNext(t, worker);
  }

  /** Push: the edge's choice, fewest jobs on the worker among those with room, else retry later. */
  const dispatch = (t: number, job: Job) => {
    let best: Worker | undefined;
    for (const bucket of buckets) {
      const first = bucket.values().next();
      if (!first.done) {
        best = first.value;
        break;
      }
    }
    if (best) {
      best.local.push(job);
      if (best.running.length === 0) startBatch(t, best, best.local);
      place(best);
      return;
    }
    job.attempts++;
    if (job.attempts > 4) {
      failed++;
      if (job.arrival >= scenario.warmup_s) measuredFailed++;
      return;
    }
    pendingRetries++;
    events.push(t + pushRetryDelay(job.attempts, random), 'retry', job);
  };

  const idlePuller = (): Worker | undefined =>
    live.find((w) => w.state === 'ready' && w.running.length === 0);

  const onArrival = (t: number) => {
    const pick = random.uniform() * totalWeight;
    let cls = 0;
    for (let acc = 0; cls < classes.length - 1; cls++) {
      acc += classes[cls]!.weight;
      if (pick < acc) break;
    }
    const job: Job = { cls, images: classes[cls]!.images, arrival: t, attempts: 0 };
    jobs++;
    images += job.images;
    if (t >= scenario.warmup_s) measuredJobs++;
    if (pool.mode === 'push') return dispatch(t, job);
    central.push(job);
    if (pool.poll_idle_s === 0) {
      const worker = idlePuller();
      if (worker) startBatch(t, worker, central);
    }
  };

  const onDone = (t: number, worker: Worker) => {
    for (const job of worker.running) {
      if (job.arrival >= scenario.warmup_s) {
        measuredDone++;
        totals.push(t - job.arrival);
        if (t <= end) measuredImages += job.images;
      }
    }
    running -= worker.running.length;
    worker.running = [];
    place(worker);
    if (pool.mode === 'pull') return pullNext(t, worker);
    if (startBatch(t, worker, worker.local)) return;
    if (worker.state === 'draining') retire(t, worker);
  };

  const onTick = (t: number) => {
    const backlog = queued() + running;
    const desired = Math.min(
      pool.max_workers,
      Math.max(pool.min_workers, Math.ceil(backlog / pool.target_per_worker)),
    );
    desiredHistory.push({ t, desired });
    while (desiredHistory.length > 0 && desiredHistory[0]!.t < t - pool.scale_down_window_s)
      desiredHistory.shift();
    const current = active();
    const target = Math.max(desired, ...desiredHistory.map((d) => d.desired));
    if (desired > current.length) {
      const cap = Math.max(
        4,
        Math.ceil(current.length * pool.scale_up_factor_per_30s ** (pool.polling_s / 30)),
      );
      for (let i = current.length; i < Math.min(desired, cap); i++) addWorker(t, false);
    } else if (target < current.length) {
      // Remove the cheapest first: still provisioning, then idle, then busy ones (which drain).
      const order = [...current].sort(
        (a, b) =>
          Number(a.state === 'ready') - Number(b.state === 'ready') ||
          a.running.length + a.local.size - (b.running.length + b.local.size),
      );
      for (const worker of order.slice(0, current.length - target)) {
        if (worker.state === 'provisioning' || (worker.running.length === 0 && worker.local.size === 0)) {
          retire(t, worker);
        } else {
          worker.state = 'draining';
          place(worker);
        }
      }
    }
  };

  // The warm pool is ready at t = 0.
  for (let i = 0; i < pool.min_workers; i++) addWorker(0, true);
  const maxRate = peakRate(scenario.arrivals);
  if (maxRate > 0) events.push(random.exponential(meanImages / maxRate), 'arrival');
  if (pool.autoscale) events.push(pool.polling_s, 'tick');
  const sampleEvery = Math.max(60, pool.polling_s);
  for (let s = 0; s <= end; s += sampleEvery) events.push(s, 'poll', 'sample');

  let now = 0;
  const horizon = end + (scenario.drain_s ?? 6 * 3600);
  while (events.length > 0) {
    const event = events.pop();
    now = event.t;
    if (now > horizon) break;
    if (event.kind === 'arrival') {
      if (now > end) continue;
      // Thinning: candidates at the peak rate, kept in proportion to the rate now.
      if (random.uniform() * maxRate <= arrivalRate(scenario.arrivals, now)) onArrival(now);
      events.push(now + random.exponential(meanImages / maxRate), 'arrival');
    } else if (event.kind === 'done') onDone(now, event.ref as Worker);
    else if (event.kind === 'ready') onReady(now, event.ref as Worker);
    else if (event.kind === 'retry') {
      pendingRetries--;
      dispatch(now, event.ref as Job);
    } else if (event.kind === 'tick') {
      onTick(now);
      if (now < end || queued() + running > 0) events.push(now + pool.polling_s, 'tick');
    } else if (event.ref === 'sample') {
      timeline.push({ t: now, workers: active().length, queued: queued() });
    } else {
      const worker = event.ref as Worker;
      worker.polling = false;
      if (worker.state === 'ready' && worker.running.length === 0) pullNext(now, worker);
      else if (worker.state === 'draining' && worker.running.length === 0) retire(now, worker);
    }
    if (now > end && queued() + running === 0) break;
  }

  // GPU time inside the measured window [warmup, end]: a worker costs from its creation to its removal.
  let gpuSeconds = 0;
  for (const worker of workers) {
    const from = Math.max(worker.created, scenario.warmup_s);
    const to = Math.min(worker.gone, end);
    if (to > from) gpuSeconds += to - from;
  }
  const window = Math.max(1, end - scenario.warmup_s);
  const gpuHours = gpuSeconds / 3600;
  return {
    jobs,
    images,
    failed,
    unfinished: measuredJobs - measuredDone - measuredFailed,
    wait: percentiles(waits),
    p_wait: waits.length > 0 ? waits.filter((w) => w > 1e-9).length / waits.length : 0,
    total: percentiles(totals),
    gpu_hours: gpuHours,
    mean_workers: gpuSeconds / window,
    peak_workers: Math.max(0, ...timeline.map((p) => p.workers)),
    utilisation: gpuSeconds > 0 ? busySeconds / gpuSeconds : 0,
    cost_per_1000_images: measuredImages > 0 ? (gpuHours * pool.gpu_hour_usd * 1000) / measuredImages : 0,
    timeline,
  };
}
