import type { AddressInfo } from 'node:net';
import { isNetworkPreprocessor, type PreprocessorName } from '@contour/shared/contracts';
import { serve } from '@hono/node-server';
import type { BackendChoice } from '../backend.ts';
import type { EngineInfo } from '../engine/model-engine.ts';
import type { PullConsumer } from '../pull/consumer.ts';
import { startPullConsumer } from '../pull/start.ts';
import { createApp, type LoadedRuntime, type ModelsInfo } from './app.ts';
import { RequestVerifier } from './auth.ts';
import type { ServiceConfig } from './config.ts';
import { setUpWebp } from './images.ts';
import { WorkerMetrics } from './metrics.ts';
import { runPreprocessRequest } from './preprocess.ts';
import { JobScheduler } from './scheduler.ts';
import { ThreadEngine } from './thread-engine.ts';

/** A started worker: its address, and how to stop it. */
export interface RunningWorker {
  port: number;
  /** Resolves once the models are loaded (rejects if loading failed). */
  loaded: Promise<void>;
  /** Graceful stop: refuse new jobs, hand back waiting ones, finish or hand back running work, close. */
  stop(): Promise<void>;
}

function engineSummary(info: EngineInfo): ModelsInfo['engine'] {
  return { name: info.engine, device: info.device, precision: info.precision, detail: info.detail };
}

function describeModels(engine: ThreadEngine): ModelsInfo {
  const { models, stats } = engine;
  return {
    base: {
      name: models.baseName,
      builtin: models.builtin,
      native_resolution: models.nativeResolution ?? null,
      description: models.description ?? null,
      suggested: models.suggested
        ? {
            prompt: models.suggested.prompt,
            steps: models.suggested.steps,
            guidance_scale: models.suggested.guidanceScale,
          }
        : null,
    },
    heads: models.servedTypes.map((type) => ({
      control_type: type,
      name: models.headNames[type] ?? type,
      loaded: stats.loadedHeads.includes(type),
    })),
    control_types: [...models.servedTypes],
    backend: models.backend,
    engine: engineSummary(models.engine),
    head_memory: { used_bytes: stats.headBytes, budget_bytes: stats.headBudgetBytes },
    preprocessors: engine.preprocessors,
  };
}

/**
 * Starts the worker: HTTP first (so /healthz answers and /readyz says "loading"), then the tfjs backend and
 * the models (the config file's, or the built-in model when none is configured).
 */
export async function startWorker(
  config: ServiceConfig,
  log: (message: string) => void = (m) => console.info(m),
): Promise<RunningWorker> {
  let engine: ThreadEngine | undefined;
  let runtime: LoadedRuntime | undefined;
  let stopping = false;
  let pull: PullConsumer | undefined;
  const metrics = new WorkerMetrics({ engineStats: () => engine?.stats });
  const verifier = new RequestVerifier({
    secrets: config.signingSecrets,
    replayWindowS: config.replayWindowS,
    clockSkewS: config.clockSkewS,
  });
  const app = createApp({ verifier, metrics, runtime: () => runtime, stopping: () => stopping });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  log(`worker: listening on http://${config.host}:${port}`);

  const loaded = (async () => {
    setUpWebp();
    const started = performance.now();
    engine = await ThreadEngine.start({
      backend: (process.env['CONTOUR_TF_BACKEND'] || undefined) as BackendChoice | undefined,
      modelConfigPath: config.modelConfigPath,
      builtinHeads: config.builtinHeads,
      builtinModel: config.builtinModel,
      annotatorDir: config.annotatorDir,
      preprocessorBudgetBytes: config.preprocessorBudgetBytes,
    });
    const { models } = engine;
    for (const line of models.engineLog) log(`worker: ${line}`);
    log(
      `worker: engine ${models.engine.engine} device=${models.engine.device} precision=${models.engine.precision} (tfjs ${models.backendPackage} holds the weights)`,
    );
    log(
      `worker: ${models.builtin ? `built-in model ${models.baseName} (no weights configured)` : `base model ${models.baseName}`} loaded in ${Math.round(performance.now() - started)} ms; heads: ${models.servedTypes.join(', ')}`,
    );
    metrics.backendInfo.set(
      { backend: models.backend, base_model: models.baseName, builtin: String(models.builtin) },
      1,
    );
    metrics.engineInfo.set(
      { engine: models.engine.engine, device: models.engine.device, precision: models.engine.precision },
      1,
    );
    const loadedEngine = engine;
    const scheduler = new JobScheduler({
      engine: loadedEngine,
      models: {
        baseName: models.baseName,
        builtin: models.builtin,
        missingHead: (types) => types.find((type) => !models.servedTypes.includes(type)),
        headName: (type) => models.headNames[type] ?? type,
        preprocessorProblem: (name) => {
          if (!isNetworkPreprocessor(name as PreprocessorName)) return undefined;
          const status = loadedEngine.preprocessors.find((p) => p.name === name);
          if (!status) return `this worker has no ${name} preprocessor`;
          if (status.available) return undefined;
          return `the ${name} preprocessor needs ${status.missing.join(', ')} (not installed on this worker; node infra/download-weights.mjs --out <weights dir> --preprocessors ${name})`;
        },
      },
      metrics,
      queueSize: config.queueSize,
      maxBatch: config.maxBatch,
      maxBatchPixels:
        config.maxBatchPixels ?? (models.engine.device === 'cuda' ? 4 * 512 * 512 : 4 * 256 * 256),
      maxBatchImages: config.maxBatchImages,
      batchWindowMs: config.batchWindowMs,
      fetch: { timeoutMs: config.imageFetchTimeoutMs, maxBytes: config.maxImageBytes },
    });
    if (!stopping) {
      runtime = {
        scheduler,
        healthy: () => loadedEngine.alive,
        models: () => describeModels(loadedEngine),
        engine: () => engineSummary(models.engine),
        preprocess: (request, signal) =>
          runPreprocessRequest(request, loadedEngine.preprocess.bind(loadedEngine), {
            timeoutMs: config.imageFetchTimeoutMs,
            maxBytes: config.maxImageBytes,
            signal,
          }),
      };
      if (config.pull)
        pull = startPullConsumer(config.pull, config.signingSecrets[0]!, scheduler, metrics, log);
    }
  })();

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      log('worker: shutting down');
      // Pull mode: stop leasing first; the jobs held finish (or are handed back) and are reported below.
      const pulled = pull?.stop();
      await runtime?.scheduler.shutdown(config.shutdownGraceMs);
      await pulled;
      // Let the streams of the last jobs flush before the sockets close.
      await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      await loaded.catch(() => {});
      await engine?.close();
      log('worker: stopped');
    })();
    return stopped;
  };
  return { port, loaded, stop };
}
