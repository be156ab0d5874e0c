import { Worker } from 'node:worker_threads';
import type { ControlType, ErrorCode } from '@contour/shared/contracts';
import type { Image8 } from '@contour/shared/preprocess';
import type { BackendChoice } from '../backend.ts';
import { GenerationAbortedError } from '../pipelines/sample.ts';
import type { PreprocessorStatus } from '../preprocessors/registry.ts';
import type { PreprocessorParams, PreprocessorResult } from '../preprocessors/types.ts';
import { RegistryError } from '../registry/errors.ts';
import type { BuiltinModelName } from '../registry/registry.ts';
import { actualSamplerSteps, type SamplerName } from '../schedulers/sampler.ts';
import type {
  EngineJob,
  EngineJobResult,
  GenerationEngine,
  SamplingSettings,
  StepCallback,
} from './engine.ts';
import { JobError } from './errors.ts';
import type { EngineStats, FromThread, LoadedModels, SerializedError, ToThread } from './thread-protocol.ts';

export type { LoadedModels };

/** Options of {@link ThreadEngine.start}. */
export interface ThreadEngineOptions {
  backend?: BackendChoice | undefined;
  modelConfigPath: string | undefined;
  builtinHeads: ControlType[] | undefined;
  builtinModel?: BuiltinModelName | undefined;
  annotatorDir?: string | undefined;
  preprocessorBudgetBytes?: number | undefined;
}

interface PendingPreprocess {
  resolve: (result: PreprocessorResult) => void;
  reject: (error: unknown) => void;
}

interface PendingRun {
  resolve: (results: EngineJobResult[]) => void;
  reject: (error: unknown) => void;
  onStep?: StepCallback | undefined;
}

function reviveError(error: SerializedError): Error {
  if (error.name === 'GenerationAbortedError') return new GenerationAbortedError(error.message);
  if (error.name === 'RegistryError') {
    return new RegistryError((error.code ?? 'model_load_failed') as RegistryError['code'], error.message);
  }
  if (error.name === 'PreprocessorUnavailableError') {
    return new JobError('model_not_available', error.message, false);
  }
  if (error.name === 'JobError') {
    return new JobError(
      (error.code ?? 'internal_error') as ErrorCode,
      error.message,
      error.retryable ?? false,
    );
  }
  const revived = new Error(error.message);
  revived.name = error.name;
  return revived;
}

/**
 * Starts engine-thread.ts. When running from TypeScript sources (tsx), loader hooks are not inherited by worker
 * threads on Node 20, so the thread first registers tsx's ESM hooks, then imports the module.
 */
function startModelThread(): Worker {
  const entry = new URL('./engine-thread.ts', import.meta.url);
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
    .then((api) => api.register())
    .then(() => import(${JSON.stringify(entry.href)}));`;
  return new Worker(bootstrap, { eval: true });
}

/**
 * A {@link GenerationEngine} whose models live in a worker thread (engine-thread.ts): tfjs blocks the thread it
 * computes on, so the HTTP thread keeps answering probes, streaming progress and taking cancellations while a
 * step runs. Cancellation crosses as a shared flag the sampler reads between steps.
 */
export class ThreadEngine implements GenerationEngine {
  /** Latest memory and head-cache numbers from the model thread. */
  stats: EngineStats;
  /** False once the model thread has exited (crashed or closed): runs are refused. */
  alive = true;
  private readonly runs = new Map<number, PendingRun>();
  private nextRunId = 1;
  private readonly preprocessing = new Map<number, PendingPreprocess>();
  /** Network preprocessors and their availability (refreshed after each preprocess). */
  preprocessors: PreprocessorStatus[];

  private constructor(
    private readonly worker: Worker,
    readonly models: LoadedModels,
    stats: EngineStats,
  ) {
    this.stats = stats;
    this.preprocessors = models.preprocessors;
    worker.on('message', (message: FromThread) => this.onMessage(message));
    worker.on('error', (error) => {
      console.error('worker: the model thread failed', error);
    });
    worker.on('exit', () => {
      this.alive = false;
      const gone = new JobError('backend_unavailable', 'the model thread stopped', true);
      for (const run of this.runs.values()) run.reject(gone);
      this.runs.clear();
      for (const pending of this.preprocessing.values()) pending.reject(gone);
      this.preprocessing.clear();
    });
  }

  /** Starts the model thread and waits for its models to load. */
  static start(options: ThreadEngineOptions): Promise<ThreadEngine> {
    const worker = startModelThread();
    return new Promise((resolve, reject) => {
      const onMessage = (message: FromThread) => {
        if (message.type === 'ready') {
          worker.off('message', onMessage);
          const { type: _type, stats, ...models } = message;
          resolve(new ThreadEngine(worker, models, stats));
        } else if (message.type === 'init-failed') {
          worker.off('message', onMessage);
          void worker.terminate();
          reject(reviveError(message.error));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      const init: ToThread = {
        type: 'init',
        backend: options.backend,
        modelConfigPath: options.modelConfigPath,
        builtinHeads: options.builtinHeads,
        builtinModel: options.builtinModel ?? 'circles',
        annotatorDir: options.annotatorDir,
        preprocessorBudgetBytes: options.preprocessorBudgetBytes,
      };
      worker.postMessage(init);
    });
  }

  get backend(): string {
    return this.models.backend;
  }

  actualSteps(steps: number, scheduler: SamplerName = 'ddim'): number {
    return actualSamplerSteps(scheduler, steps);
  }

  run(
    jobs: EngineJob[],
    settings: SamplingSettings,
    options: { onStep?: StepCallback; signal?: AbortSignal } = {},
  ): Promise<EngineJobResult[]> {
    if (!this.alive) {
      return Promise.reject(new JobError('backend_unavailable', 'the model thread is not running', true));
    }
    const runId = this.nextRunId++;
    const abortFlag = new SharedArrayBuffer(4);
    const flag = new Int32Array(abortFlag);
    const raise = () => Atomics.store(flag, 0, 1);
    if (options.signal?.aborted) raise();
    options.signal?.addEventListener('abort', raise, { once: true });
    return new Promise<EngineJobResult[]>((resolve, reject) => {
      this.runs.set(runId, { resolve, reject, onStep: options.onStep });
      const message: ToThread = { type: 'run', runId, jobs, settings, abortFlag };
      this.worker.postMessage(message);
    }).finally(() => options.signal?.removeEventListener('abort', raise));
  }

  preprocess(name: string, image: Image8<3>, params: PreprocessorParams): Promise<PreprocessorResult> {
    if (!this.alive) {
      return Promise.reject(new JobError('backend_unavailable', 'the model thread is not running', true));
    }
    const id = this.nextRunId++;
    return new Promise<PreprocessorResult>((resolve, reject) => {
      this.preprocessing.set(id, { resolve, reject });
      const message: ToThread = { type: 'preprocess', id, name, image, params };
      this.worker.postMessage(message);
    });
  }

  /** Frees the models and ends the thread. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.worker.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      const message: ToThread = { type: 'dispose' };
      this.worker.postMessage(message);
    });
    await this.worker.terminate();
  }

  private onMessage(message: FromThread): void {
    if (message.type === 'preprocessed' || message.type === 'preprocess-failed') {
      const pending = this.preprocessing.get(message.id);
      this.preprocessing.delete(message.id);
      if (message.type === 'preprocessed') {
        this.preprocessors = message.preprocessors;
        pending?.resolve(message.result);
      } else pending?.reject(reviveError(message.error));
      return;
    }
    if (message.type === 'step') {
      this.runs.get(message.runId)?.onStep?.(message.step, message.total, message.stepMs);
    } else if (message.type === 'done' || message.type === 'failed') {
      this.stats = message.stats;
      const run = this.runs.get(message.runId);
      this.runs.delete(message.runId);
      if (message.type === 'done') run?.resolve(message.results);
      else run?.reject(reviveError(message.error));
    }
  }
}
