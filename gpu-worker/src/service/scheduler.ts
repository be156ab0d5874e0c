import {
  CONTROL_TYPE_INFO,
  type ControlType,
  type ErrorCode,
  type WorkerJob,
  type WorkerMessage,
} from '@contour/shared/contracts';
import { encodePng, type Image8 } from '@contour/shared/preprocess';
import { GenerationAbortedError } from '../pipelines/sample.ts';
import { RegistryError } from '../registry/errors.ts';
import type { EngineJob, GenerationEngine, PreparedControl, SamplingSettings } from './engine.ts';
import { JobError } from './errors.ts';
import { encodeOutput, type FetchImageOptions, OUTPUT_CONTENT_TYPES, prepareControl } from './images.ts';
import { type PreparedInit, prepareInit } from './init-images.ts';
import { MessageStream } from './message-stream.ts';
import type { JobOutcome, WorkerMetrics } from './metrics.ts';

/** What the scheduler needs to know about the models served. */
export interface ServedModels {
  baseName: string;
  builtin: boolean;
  /** The first of `types` without a configured head. */
  missingHead(types: readonly ControlType[]): ControlType | undefined;
  /** Name of the head serving a control type (reported in results). */
  headName(type: ControlType): string;
  /** Why a network preprocessor cannot run here (its weight files are missing), or undefined when it can. */
  preprocessorProblem?(name: string): string | undefined;
}

/** Options of {@link JobScheduler}. */
export interface SchedulerOptions {
  engine: GenerationEngine;
  models: ServedModels;
  metrics: WorkerMetrics;
  queueSize: number;
  maxBatch: number;
  maxBatchImages: number;
  /** Most output pixels (width x height x images) in one batch; a bigger job runs alone. */
  maxBatchPixels: number;
  batchWindowMs: number;
  fetch: Omit<FetchImageOptions, 'signal'>;
}

interface Prepared {
  controls: PreparedControl[];
  /** img2img / inpaint input. */
  init?: PreparedInit;
  controlImages: Image8<3>[];
  fetchMs: number;
  preprocessMs: number;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface ActiveJob {
  job: WorkerJob;
  receivedAt: number;
  state: 'waiting' | 'running' | 'done';
  messages: MessageStream<WorkerMessage>;
  /** Aborted when the job ends early (cancel, deadline, shutdown): stops its image fetches. */
  abort: AbortController;
  prepared: Promise<Settled<Prepared>>;
  settled?: Settled<Prepared>;
  deadlineTimer?: NodeJS.Timeout;
  startedAt?: number;
}

/** A job accepted by {@link JobScheduler.submit}: its messages, ending with one `result` or `error`. */
export interface JobHandle {
  jobId: string;
  messages: AsyncIterable<WorkerMessage>;
}

/** Settings that must match for jobs to share a micro-batch (controls: same heads and schedules). */
function batchKey(job: WorkerJob): string {
  // Image-mode jobs run alone (their start step and latent blending are per job).
  if (job.init_image) return JSON.stringify(['init', job.job_id]);
  return JSON.stringify([
    job.base_model,
    job.width,
    job.height,
    job.steps,
    job.scheduler,
    job.guidance_scale,
    job.eta,
    job.guess_mode,
    job.controls.map((c) => [c.type, c.strength, c.start, c.end]),
  ]);
}

/** Reads the state afresh (TypeScript would keep a narrowing across awaits). */
function hasEnded(entry: ActiveJob): boolean {
  return entry.state === 'done';
}

function settingsOf(job: WorkerJob): SamplingSettings {
  return {
    width: job.width,
    height: job.height,
    steps: job.steps,
    scheduler: job.scheduler,
    guidanceScale: job.guidance_scale,
    eta: job.eta,
    guessMode: job.guess_mode,
  };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Runs jobs on one device, one batch at a time: a bounded FIFO queue (control images are fetched and
 * preprocessed while a job waits), micro-batches of compatible jobs, per-job deadlines, cancellation between
 * steps, and a graceful shutdown that finishes or hands back running work.
 */
export class JobScheduler {
  private readonly active = new Map<string, ActiveJob>();
  private waiting: ActiveJob[] = [];
  private running: ActiveJob[] = [];
  private runningBatch: Promise<void> | undefined;
  private batchAbort: AbortController | undefined;
  private shuttingDown = false;
  /** Moving average of a batch's wall time, for Retry-After. */
  private averageBatchMs = 10_000;

  constructor(private readonly options: SchedulerOptions) {}

  /** Jobs waiting (not running). */
  get queueDepth(): number {
    return this.waiting.length;
  }

  /** True when a new job would be refused with 429. */
  get full(): boolean {
    return this.waiting.length >= this.options.queueSize;
  }

  /** True once {@link shutdown} has begun. */
  get stopping(): boolean {
    return this.shuttingDown;
  }

  /** Seconds after which a refused job might be accepted. */
  retryAfterSeconds(): number {
    const batches = Math.ceil((this.waiting.length + 1) / this.options.maxBatch);
    return Math.min(600, Math.max(1, Math.ceil((batches * this.averageBatchMs) / 1000)));
  }

  /**
   * Accepts a job or throws a {@link JobError}: `backend_unavailable` while shutting down, `conflict` for a
   * job id already active, `model_not_available` naming a missing head, `queue_full` when the queue is full.
   */
  submit(job: WorkerJob): JobHandle {
    if (this.shuttingDown) throw new JobError('backend_unavailable', 'the worker is shutting down', true);
    if (this.active.has(job.job_id)) {
      throw new JobError('conflict', `job ${job.job_id} is already queued or running on this worker`);
    }
    const missing = this.options.models.missingHead(job.controls.map((c) => c.type));
    if (missing) {
      const index = job.controls.findIndex((c) => c.type === missing);
      throw new JobError(
        'model_not_available',
        `no ControlNet head is configured for control type "${missing}" on this worker (${CONTROL_TYPE_INFO[missing].checkpoint})`,
        false,
        [{ path: `controls.${index}.type`, message: `no "${missing}" head on this worker` }],
      );
    }
    for (const [index, control] of job.controls.entries()) {
      const name = control.preprocess ? control.preprocessor : undefined;
      const problem = name ? this.options.models.preprocessorProblem?.(name) : undefined;
      if (problem) {
        throw new JobError('model_not_available', problem, false, [
          { path: `controls.${index}.preprocessor`, message: problem },
        ]);
      }
    }
    if (this.full) {
      this.options.metrics.jobs.inc({ outcome: 'rejected' });
      throw new JobError('queue_full', `the worker queue is full (${this.options.queueSize} waiting)`, true);
    }
    const abort = new AbortController();
    const entry: ActiveJob = {
      job,
      receivedAt: Date.now(),
      state: 'waiting',
      messages: new MessageStream(),
      abort,
      prepared: this.prepare(job, abort.signal).then(
        (value): Settled<Prepared> => ({ ok: true, value }),
        (error: unknown): Settled<Prepared> => ({ ok: false, error }),
      ),
    };
    entry.prepared.then((settled) => {
      entry.settled = settled;
      // A job whose images cannot be had fails now rather than when it reaches the head of the queue.
      if (!settled.ok && entry.state === 'waiting') this.failFromError(entry, settled.error);
    });
    this.active.set(job.job_id, entry);
    this.waiting.push(entry);
    this.options.metrics.queueDepth.set(this.waiting.length);
    const untilDeadline = job.deadline_at - Date.now();
    if (untilDeadline <= 0) {
      queueMicrotask(() =>
        this.finishWithError(entry, 'timeout', 'the job deadline passed before it started', false, 'timeout'),
      );
    } else {
      entry.deadlineTimer = setTimeout(
        () => this.finishWithError(entry, 'timeout', 'the job deadline passed', false, 'timeout'),
        untilDeadline,
      );
      entry.deadlineTimer.unref();
    }
    this.pump();
    return { jobId: job.job_id, messages: entry.messages };
  }

  /** Cancels a waiting or running job (a running one stops at the next step); false if it is not active. */
  cancel(jobId: string): 'waiting' | 'running' | undefined {
    const entry = this.active.get(jobId);
    if (!entry || entry.state === 'done') return undefined;
    const state = entry.state;
    this.finishWithError(entry, 'canceled', 'the job was canceled', false, 'canceled');
    return state;
  }

  /**
   * Stops taking jobs, hands waiting jobs back (retryable error), lets the running batch finish for up to
   * `graceMs`, then hands it back too. Resolves when the device is idle.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.shuttingDown = true;
    for (const entry of [...this.waiting]) {
      this.finishWithError(
        entry,
        'backend_unavailable',
        'the worker is shutting down; the job was not started',
        true,
        'handed_back',
      );
    }
    if (this.runningBatch) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([this.runningBatch, grace]);
      clearTimeout(timer);
      for (const entry of [...this.running]) {
        this.finishWithError(
          entry,
          'backend_unavailable',
          'the worker shut down before the job finished',
          true,
          'handed_back',
        );
      }
      await this.runningBatch;
    }
  }

  /** Fetches and preprocesses the job's control images (runs while the job waits). */
  private async prepare(job: WorkerJob, signal: AbortSignal): Promise<Prepared> {
    const [units, init] = await Promise.all([
      Promise.all(
        job.controls.map((control) =>
          prepareControl(control, job.width, job.height, {
            ...this.options.fetch,
            signal,
            runPreprocessor: this.options.engine.preprocess?.bind(this.options.engine),
          }),
        ),
      ),
      prepareInit(job, { ...this.options.fetch, signal }),
    ]);
    return {
      ...(init ? { init } : {}),
      controls: units.map((unit, i) => {
        const control = job.controls[i]!;
        return {
          type: control.type,
          map: unit.map,
          strength: control.strength,
          start: control.start,
          end: control.end,
        };
      }),
      controlImages: units.map((unit) => unit.image8),
      fetchMs: Math.max(init?.fetchMs ?? 0, ...units.map((u) => u.fetchMs)),
      preprocessMs: units.reduce((sum, u) => sum + u.preprocessMs, 0),
    };
  }

  /** Ends a job with an error line; no-op if it already ended. */
  private finishWithError(
    entry: ActiveJob,
    code: ErrorCode,
    message: string,
    retryable = false,
    outcome: JobOutcome = 'failed',
  ): void {
    if (entry.state === 'done') return;
    entry.messages.push({ type: 'error', job_id: entry.job.job_id, code, message, retryable });
    this.options.metrics.jobs.inc({ outcome });
    this.end(entry);
  }

  private end(entry: ActiveJob): void {
    const wasRunning = entry.state === 'running';
    entry.state = 'done';
    clearTimeout(entry.deadlineTimer);
    entry.abort.abort();
    entry.messages.close();
    this.active.delete(entry.job.job_id);
    this.waiting = this.waiting.filter((e) => e !== entry);
    this.options.metrics.queueDepth.set(this.waiting.length);
    // A batch whose jobs have all ended stops at its next step.
    if (wasRunning && this.running.every((e) => e.state === 'done')) this.batchAbort?.abort();
  }

  /** Starts the next batch if the device is free. */
  private pump(): void {
    if (this.runningBatch || this.waiting.length === 0) return;
    this.runningBatch = this.runNextBatch().finally(() => {
      this.runningBatch = undefined;
      this.running = [];
      this.options.metrics.running.set(0);
      if (!this.shuttingDown) this.pump();
    });
  }

  private async runNextBatch(): Promise<void> {
    const head = this.waiting[0];
    if (!head) return;
    const settled = await head.prepared;
    if (head.state === 'done') return;
    if (!settled.ok) {
      this.failFromError(head, settled.error);
      return;
    }
    if (this.options.maxBatch > 1 && this.options.batchWindowMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.options.batchWindowMs));
      if (hasEnded(head)) return;
    }
    const key = batchKey(head.job);
    const batch = [head];
    const pixelsPerImage = head.job.width * head.job.height;
    let images = head.job.num_images;
    for (const entry of this.waiting) {
      if (batch.length >= this.options.maxBatch) break;
      if (entry === head || !entry.settled?.ok || batchKey(entry.job) !== key) continue;
      const total = images + entry.job.num_images;
      if (total > this.options.maxBatchImages || total * pixelsPerImage > this.options.maxBatchPixels)
        continue;
      batch.push(entry);
      images = total;
    }
    this.waiting = this.waiting.filter((e) => !batch.includes(e));
    this.options.metrics.queueDepth.set(this.waiting.length);
    const startedAt = Date.now();
    for (const entry of batch) {
      entry.state = 'running';
      entry.startedAt = startedAt;
      this.options.metrics.stageSeconds.observe({ stage: 'queue' }, (startedAt - entry.receivedAt) / 1000);
    }
    this.running = batch;
    this.options.metrics.running.set(batch.length);
    this.options.metrics.batchSize.observe(batch.length);
    await this.runBatch(batch);
    const elapsed = Date.now() - startedAt;
    this.averageBatchMs = 0.7 * this.averageBatchMs + 0.3 * elapsed;
  }

  private failFromError(entry: ActiveJob, error: unknown): void {
    if (error instanceof JobError) {
      this.finishWithError(entry, error.code, error.message, error.retryable);
    } else if (error instanceof RegistryError) {
      const code = error.code === 'model_not_available' ? 'model_not_available' : 'backend_error';
      this.finishWithError(entry, code, error.message, code === 'backend_error');
    } else {
      const message = error instanceof Error ? error.message : String(error);
      this.finishWithError(entry, 'internal_error', `generation failed: ${message}`, true);
    }
  }

  private async runBatch(batch: ActiveJob[]): Promise<void> {
    const { engine, metrics } = this.options;
    const first = batch[0]!.job;
    const abort = new AbortController();
    this.batchAbort = abort;
    const prepared = batch.map((entry) => (entry.settled as { ok: true; value: Prepared }).value);
    const jobs: EngineJob[] = batch.map((entry, i) => ({
      prompt: entry.job.prompt,
      negativePrompt: entry.job.negative_prompt,
      seed: entry.job.seed,
      numImages: entry.job.num_images,
      controls: prepared[i]!.controls,
      ...(prepared[i]!.init ? { init: prepared[i]!.init } : {}),
    }));
    let results: Awaited<ReturnType<GenerationEngine['run']>>;
    try {
      results = await engine.run(jobs, settingsOf(first), {
        signal: abort.signal,
        onStep: (step, total, stepMs) => {
          metrics.stepSeconds.observe(stepMs / 1000);
          for (const entry of batch) {
            if (entry.state !== 'running') continue;
            entry.messages.push({ type: 'progress', job_id: entry.job.job_id, step, total });
          }
        },
      });
    } catch (error) {
      if (!(error instanceof GenerationAbortedError)) {
        for (const entry of batch) this.failFromError(entry, error);
      }
      return;
    } finally {
      this.batchAbort = undefined;
    }
    for (const [i, entry] of batch.entries()) {
      if (entry.state !== 'running') continue;
      try {
        await this.sendResult(entry, prepared[i]!, results[i]!);
      } catch (error) {
        this.failFromError(entry, error);
      }
    }
  }

  private async sendResult(
    entry: ActiveJob,
    prepared: Prepared,
    result: Awaited<ReturnType<GenerationEngine['run']>>[number],
  ): Promise<void> {
    const { job } = entry;
    const { metrics, models, engine } = this.options;
    const encodeStarted = performance.now();
    const images = await Promise.all(
      result.images.map(async (image, index) => ({
        index,
        content_type: OUTPUT_CONTENT_TYPES[job.output_format],
        data_base64: base64(await encodeOutput(image, job.output_format)),
        width: image.width,
        height: image.height,
      })),
    );
    const controlMaps = prepared.controlImages.map((image, index) => ({
      index,
      content_type: 'image/png',
      data_base64: base64(encodePng(image)),
    }));
    if (entry.state !== 'running') return;
    const timings: Record<string, number> = {
      queue: (entry.startedAt ?? entry.receivedAt) - entry.receivedAt,
      fetch: prepared.fetchMs,
      preprocess: prepared.preprocessMs,
      ...result.timingsMs,
      encode: performance.now() - encodeStarted,
    };
    timings['total'] = Date.now() - entry.receivedAt;
    for (const [stage, ms] of Object.entries(timings)) {
      if (stage !== 'total' && stage !== 'queue') metrics.stageSeconds.observe({ stage }, ms / 1000);
    }
    entry.messages.push({
      type: 'result',
      job_id: job.job_id,
      images,
      control_maps: controlMaps,
      steps: result.steps,
      timings_ms: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v * 10) / 10])),
      backend: engine.backend,
      model: {
        base: models.baseName,
        heads: job.controls.map((c) => models.headName(c.type)),
        builtin: models.builtin,
      },
    });
    metrics.images.inc(images.length);
    metrics.jobs.inc({ outcome: 'succeeded' });
    this.end(entry);
  }
}
