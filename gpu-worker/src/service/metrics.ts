import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EngineStats } from './thread-protocol.ts';

/** Final states of a job, as counted in `contour_worker_jobs_total{outcome}`. */
export type JobOutcome = 'succeeded' | 'failed' | 'canceled' | 'timeout' | 'rejected' | 'handed_back';

/** The worker's Prometheus metrics, on their own registry (served at /metrics). */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly queueDepth: Gauge;
  readonly running: Gauge;
  readonly jobs: Counter<'outcome'>;
  /** Pull mode: deliveries by what became of them (claim decision, then ack, retry or left to lapse). */
  readonly pullDeliveries: Counter<'outcome'>;
  readonly images: Counter;
  readonly stepSeconds: Histogram;
  readonly stageSeconds: Histogram<'stage'>;
  readonly batchSize: Histogram;
  readonly backendInfo: Gauge<'backend' | 'base_model' | 'builtin'>;
  readonly engineInfo: Gauge<'engine' | 'device' | 'precision'>;
  readonly headsLoaded: Gauge;
  readonly headEvictions: Gauge;

  constructor(options: { engineStats?: () => EngineStats | undefined } = {}) {
    const engineStats = options.engineStats ?? (() => undefined);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'contour_worker_' });
    this.queueDepth = new Gauge({
      name: 'contour_worker_queue_depth',
      help: 'Jobs waiting for the device.',
      registers,
    });
    this.running = new Gauge({
      name: 'contour_worker_jobs_running',
      help: 'Jobs on the device now.',
      registers,
    });
    this.jobs = new Counter({
      name: 'contour_worker_jobs_total',
      help: 'Jobs by final outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.pullDeliveries = new Counter({
      name: 'contour_worker_pull_deliveries_total',
      help: 'Pull mode: queue deliveries by outcome (run, deferred, dropped; acked, retried, left).',
      labelNames: ['outcome'],
      registers,
    });
    this.images = new Counter({
      name: 'contour_worker_images_generated_total',
      help: 'Images generated and returned.',
      registers,
    });
    this.stepSeconds = new Histogram({
      name: 'contour_worker_step_seconds',
      help: 'Wall time of one denoising step of a batch.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.stageSeconds = new Histogram({
      name: 'contour_worker_stage_seconds',
      help: 'Wall time of each stage of a job (fetch, preprocess, text, hint, denoise, decode, encode, queue).',
      labelNames: ['stage'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'contour_worker_batch_jobs',
      help: 'Jobs per micro-batch.',
      buckets: [1, 2, 3, 4, 6, 8],
      registers,
    });
    this.backendInfo = new Gauge({
      name: 'contour_worker_backend_info',
      help: 'The tfjs backend and base model in use (value 1).',
      labelNames: ['backend', 'base_model', 'builtin'],
      registers,
    });
    this.engineInfo = new Gauge({
      name: 'contour_worker_engine_info',
      help: 'The model runtime in use: engine (tfjs, onnxruntime), device and precision (value 1).',
      labelNames: ['engine', 'device', 'precision'],
      registers,
    });
    new Gauge({
      name: 'contour_worker_tensor_bytes',
      help: 'Bytes held by live TensorFlow.js tensors in the model thread (weights included), after the last run.',
      registers,
      collect() {
        this.set(engineStats()?.tensorBytes ?? 0);
      },
    });
    new Gauge({
      name: 'contour_worker_tensors',
      help: 'Live TensorFlow.js tensors in the model thread, after the last run.',
      registers,
      collect() {
        this.set(engineStats()?.tensors ?? 0);
      },
    });
    this.headsLoaded = new Gauge({
      name: 'contour_worker_heads_loaded',
      help: 'ControlNet heads loaded now.',
      registers,
      collect() {
        this.set(engineStats()?.loadedHeads.length ?? 0);
      },
    });
    this.headEvictions = new Gauge({
      name: 'contour_worker_head_evictions',
      help: 'ControlNet heads evicted (LRU under the memory budget) since start.',
      registers,
      collect() {
        this.set(engineStats()?.headEvictions ?? 0);
      },
    });
  }
}
