/**
 * The model thread: owns TensorFlow.js, the registry and the engine, so the HTTP thread stays responsive while
 * a step runs (tfjs kernels block the thread they run on). Messages are described in thread-protocol.ts.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { engineSettingsFromEnv, selectEngine } from '../engine/select.ts';
import { PREPROCESSOR_DEFINITIONS } from '../preprocessors/index.ts';
import { PreprocessorRegistry, PreprocessorUnavailableError } from '../preprocessors/registry.ts';
import { readModelConfig } from '../registry/config.ts';
import { createBuiltinRegistry, createRegistryFromConfig, type ModelRegistry } from '../registry/registry.ts';
import { TfGenerationEngine } from './engine.ts';
import { JobError } from './errors.ts';
import type { EngineStats, FromThread, SerializedError, ToThread } from './thread-protocol.ts';

const port = parentPort;
if (!port) throw new Error('engine-thread.ts must run in a worker thread');

let registry: ModelRegistry | undefined;
let engine: TfGenerationEngine | undefined;
let preprocessors: PreprocessorRegistry | undefined;

/** Annotator memory budget beside the built-in model (whose head budget is tiny). */
const BUILTIN_PREPROCESSOR_BUDGET_BYTES = 2 * 1024 ** 3;

function post(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function stats(): EngineStats {
  const memory = tf.memory();
  const registryStats = registry?.stats;
  return {
    tensors: memory.numTensors,
    tensorBytes: memory.numBytes,
    loadedHeads: registryStats?.loadedHeads ?? [],
    headBytes: registryStats?.headBytes ?? 0,
    headBudgetBytes: registryStats?.budgetBytes ?? 0,
    headEvictions: registryStats?.evictions ?? 0,
  };
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      name: error.name,
      message: error.message,
      code: typeof code === 'string' ? code : undefined,
      retryable:
        error instanceof JobError
          ? error.retryable
          : error instanceof PreprocessorUnavailableError
            ? false
            : undefined,
    };
  }
  return { name: 'Error', message: String(error) };
}

port.on('message', (message: ToThread) => {
  if (message.type === 'init') {
    void (async () => {
      try {
        const engineLog: string[] = [];
        const settings = engineSettingsFromEnv();
        if (message.backend) settings.tfBackend = message.backend;
        const selected = await selectEngine({
          settings,
          log: (line) => (registry ? console.info(`worker: ${line}`) : engineLog.push(line)),
        });
        registry = message.modelConfigPath
          ? await createRegistryFromConfig(await readModelConfig(message.modelConfigPath))
          : await createBuiltinRegistry({ model: message.builtinModel, heads: message.builtinHeads });
        registry.bindEngine(selected.engine);
        engine = new TfGenerationEngine(registry, selected.engine);
        preprocessors = new PreprocessorRegistry({
          definitions: PREPROCESSOR_DEFINITIONS,
          annotatorDir: message.annotatorDir,
          // The built-in model's head budget is a few MiB; annotators are tens to hundreds.
          budgetBytes:
            message.preprocessorBudgetBytes ??
            (registry.base.builtin ? BUILTIN_PREPROCESSOR_BUDGET_BYTES : registry.stats.budgetBytes),
          engine: selected.engine,
          log: (line) => console.info(`worker: ${line}`),
        });
        const loaded = registry;
        post({
          type: 'ready',
          backend: engine.backend,
          backendPackage: selected.backend.package,
          engine: selected.info,
          engineLog,
          baseName: loaded.base.name,
          builtin: loaded.base.builtin,
          nativeResolution: loaded.base.nativeResolution,
          description: loaded.base.description,
          suggested: loaded.base.suggested,
          servedTypes: [...loaded.servedTypes],
          headNames: Object.fromEntries(loaded.servedTypes.map((t) => [t, loaded.headName(t)])),
          preprocessors: preprocessors.status(),
          stats: stats(),
        });
      } catch (error) {
        post({ type: 'init-failed', error: serializeError(error) });
      }
    })();
    return;
  }
  if (message.type === 'run') {
    const flag = new Int32Array(message.abortFlag);
    // sampleLatents reads only `signal.aborted` between steps; the HTTP thread sets the shared flag.
    const signal = {
      get aborted() {
        return Atomics.load(flag, 0) !== 0;
      },
    } as AbortSignal;
    void (async () => {
      try {
        if (!engine) throw new Error('the engine is not initialised');
        const results = await engine.run(message.jobs, message.settings, {
          signal,
          onStep: (step, total, stepMs) => post({ type: 'step', runId: message.runId, step, total, stepMs }),
        });
        const transfer = results.flatMap((r) => r.images.map((image) => image.data.buffer as ArrayBuffer));
        post({ type: 'done', runId: message.runId, results, stats: stats() }, transfer);
      } catch (error) {
        post({ type: 'failed', runId: message.runId, error: serializeError(error), stats: stats() });
      }
    })();
    return;
  }
  if (message.type === 'preprocess') {
    void (async () => {
      try {
        if (!preprocessors) throw new Error('the engine is not initialised');
        const result = await preprocessors.run(message.name, message.image, message.params);
        post({ type: 'preprocessed', id: message.id, result, preprocessors: preprocessors.status() }, [
          result.map.data.buffer as ArrayBuffer,
        ]);
      } catch (error) {
        post({ type: 'preprocess-failed', id: message.id, error: serializeError(error) });
      }
    })();
    return;
  }
  if (message.type === 'dispose') {
    void preprocessors?.dispose();
    registry?.dispose();
    post({ type: 'disposed' });
  }
});
