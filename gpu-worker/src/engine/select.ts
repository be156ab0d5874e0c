import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { type BackendChoice, type BackendInfo, initBackend } from '../backend.ts';
import { type EngineInfo, type ModelEngine, TfModelEngine } from './model-engine.ts';
import { OnnxBuilder } from './onnx/builder.ts';
import { OrtModelEngine } from './onnx/ort-engine.ts';
import { writeModel } from './onnx/serialize.ts';

/** `CONTOUR_ENGINE` values. */
export const ENGINE_CHOICES = ['auto', 'tfjs', 'onnxruntime'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];

/** Engine settings, normally from the environment ({@link engineSettingsFromEnv}). */
export interface EngineSettings {
  engine: EngineChoice;
  /** Device for ONNX Runtime (default: cuda when its provider is installed and a GPU answers, else cpu). */
  device: 'cpu' | 'cuda' | undefined;
  /** Default fp16 on cuda, fp32 on cpu. */
  precision: 'fp32' | 'fp16' | undefined;
  /** Intra-op threads (ONNX Runtime); default: one per core. */
  threads: number | undefined;
  /** tfjs backend to force (`CONTOUR_TF_BACKEND`), when the engine is tfjs. */
  tfBackend: BackendChoice | undefined;
}

/** Raised for settings that name something unknown or an engine that cannot load (the message says what). */
export class EngineSelectionError extends Error {
  override readonly name = 'EngineSelectionError';
  readonly code = 'engine_unavailable';
}

/** Reads CONTOUR_ENGINE, CONTOUR_ENGINE_DEVICE, CONTOUR_ENGINE_PRECISION, CONTOUR_ENGINE_THREADS. */
export function engineSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): EngineSettings {
  const pick = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    if (!allowed.includes(value as T))
      throw new EngineSelectionError(`${name}=${value} is not one of ${allowed.join(', ')}`);
    return value as T;
  };
  const threadsText = env['CONTOUR_ENGINE_THREADS'];
  const threads = threadsText ? Number(threadsText) : undefined;
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0))
    throw new EngineSelectionError(`CONTOUR_ENGINE_THREADS=${threadsText} is not a positive integer`);
  const tfBackend = pick('CONTOUR_TF_BACKEND', ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const);
  return {
    // A configuration that names a tfjs backend and no engine predates engines: it meant tfjs.
    engine: pick('CONTOUR_ENGINE', ENGINE_CHOICES) ?? (tfBackend ? 'tfjs' : 'auto'),
    device: pick('CONTOUR_ENGINE_DEVICE', ['cpu', 'cuda'] as const),
    precision: pick('CONTOUR_ENGINE_PRECISION', ['fp32', 'fp16'] as const),
    threads,
    tfBackend,
  };
}

/** What the machine offers, as far as engine choice goes (probed; injectable for tests). */
export interface MachineProbe {
  /** Compute capabilities of the visible NVIDIA GPUs ("9.0"), empty when none answers. */
  gpus(): string[];
  /** Whether a shared library can be found by the dynamic loader. */
  hasLibrary(name: string): boolean;
  /** Whether an npm package can be resolved from here. */
  hasPackage(name: string): boolean;
  /** Whether onnxruntime-node has its CUDA provider library installed. */
  hasOrtCudaProvider(): boolean;
}

const require = createRequire(import.meta.url);

/** The real machine. */
export const systemProbe: MachineProbe = {
  gpus() {
    try {
      const out = execFileSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], {
        encoding: 'utf8',
        timeout: 5000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      return out
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => /^\d+\.\d+$/.test(line));
    } catch {
      return [];
    }
  },
  hasLibrary(name) {
    try {
      const out = execFileSync('ldconfig', ['-p'], {
        encoding: 'utf8',
        timeout: 5000,
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      if (out.includes(name)) return true;
    } catch {
      // No ldconfig: fall through to LD_LIBRARY_PATH.
    }
    const dirs = (process.env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean);
    return dirs.some((dir) => existsSync(join(dir, name)));
  },
  hasPackage(name) {
    try {
      require.resolve(name);
      return true;
    } catch {
      return false;
    }
  },
  hasOrtCudaProvider() {
    try {
      const root = dirname(dirname(require.resolve('onnxruntime-node')));
      const bin = join(root, 'bin');
      for (const napi of readdirSync(bin)) {
        const dir = join(bin, napi, 'linux', 'x64');
        if (existsSync(join(dir, 'libonnxruntime_providers_cuda.so'))) return true;
      }
    } catch {
      // Not installed.
    }
    return false;
  },
};

/**
 * Why tfjs-node-gpu cannot run here, or undefined when it can: its libtensorflow 2.9.1 needs CUDA 11 and cuDNN 8
 * and has no code for Hopper (compute capability 9.x) or newer (see infra/README.md).
 */
export function tfjsGpuBlocker(probe: MachineProbe): string | undefined {
  if (!probe.hasPackage('@tensorflow/tfjs-node-gpu')) return '@tensorflow/tfjs-node-gpu is not installed';
  const gpus = probe.gpus();
  if (gpus.length === 0) return 'no NVIDIA GPU answers nvidia-smi';
  const unsupported = gpus.find((cc) => Number(cc.split('.')[0]) >= 9);
  if (unsupported)
    return `GPU compute capability ${unsupported} (Hopper or newer) is unsupported by libtensorflow 2.9.1`;
  if (!probe.hasLibrary('libcudart.so.11.0')) return 'CUDA 11 runtime (libcudart.so.11.0) not found';
  if (!probe.hasLibrary('libcudnn.so.8')) return 'cuDNN 8 (libcudnn.so.8) not found';
  return undefined;
}

/** The chosen engine, the tfjs backend that holds the weights and runs the glue, and why. */
export interface SelectedEngine {
  engine: ModelEngine;
  info: EngineInfo;
  backend: BackendInfo;
}

/** Options of {@link selectEngine}. */
export interface SelectEngineOptions {
  settings?: EngineSettings;
  probe?: MachineProbe;
  log?: (message: string) => void;
  /** ONNX graph cache folder (default: see defaultCacheDir). */
  cacheDir?: string;
  /** Imports onnxruntime-node (tests replace it to simulate a broken install). */
  importOrt?: () => Promise<typeof Ort>;
}

/** Imports onnxruntime-node and runs a one-node graph on `device`, so a broken install fails here, not mid-job. */
async function loadOrt(
  device: 'cpu' | 'cuda',
  cacheDir: string | undefined,
  importOrt: () => Promise<typeof Ort>,
): Promise<typeof Ort> {
  const ort = await importOrt();
  const builder = new OnnxBuilder({ precision: 'fp32' });
  builder.output('y', builder.mulScalar(builder.input('x', [2]), 2));
  mkdirSync(cacheDir ?? tmpdir(), { recursive: true });
  const dir = mkdtempSync(join(cacheDir ?? tmpdir(), 'probe-'));
  try {
    writeModel(builder, join(dir, 'probe.onnx'));
    const session = await ort.InferenceSession.create(join(dir, 'probe.onnx'), {
      executionProviders: device === 'cuda' ? ['cuda'] : ['cpu'],
    });
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
    const y = out['y']!.data as Float32Array;
    await session.release();
    if (y[0] !== 2 || y[1] !== 4) throw new Error(`probe graph computed [${y[0]}, ${y[1]}], expected [2, 4]`);
    return ort;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function message(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * Picks the engine: a forced one (`CONTOUR_ENGINE=tfjs|onnxruntime`) or fails naming what is missing; `auto`
 * takes tfjs-node-gpu when installed and the GPU is one it supports, else ONNX Runtime CUDA when its provider is
 * installed, else ONNX Runtime CPU, else tfjs (wasm). Logs one line per engine passed over and one for the
 * choice.
 */
export async function selectEngine(options: SelectEngineOptions = {}): Promise<SelectedEngine> {
  const settings = options.settings ?? engineSettingsFromEnv();
  const probe = options.probe ?? systemProbe;
  const log = options.log ?? ((m: string) => console.info(m));

  const tfjs = async (force: BackendChoice | undefined, why: string): Promise<SelectedEngine> => {
    const backend = await initBackend({ force, log: () => {} });
    // tfjs-node-gpu and tfjs-node both register as 'tensorflow'; report the device they compute on.
    const device =
      backend.name === 'tensorflow' ? (backend.package.endsWith('-gpu') ? 'cuda' : 'cpu') : backend.name;
    const info: EngineInfo = { engine: 'tfjs', device, precision: 'fp32', detail: backend.package };
    log(`engine: tfjs device=${device} precision=fp32 (${backend.package}; ${why})`);
    return { engine: new TfModelEngine(info), info, backend };
  };

  const ortEngine = async (device: 'cpu' | 'cuda', why: string): Promise<SelectedEngine> => {
    const ort = await loadOrt(
      device,
      options.cacheDir,
      options.importOrt ?? (async () => (await import('onnxruntime-node')) as typeof Ort),
    );
    // The weights stay in tfjs tensors until graphs are built: the cpu backend has no 4 GiB heap limit.
    const backend = await initBackend({ force: 'cpu', log: () => {} });
    const precision = settings.precision ?? (device === 'cuda' ? 'fp16' : 'fp32');
    const engine = new OrtModelEngine(ort, {
      device,
      precision,
      threads: settings.threads,
      cacheDir: options.cacheDir,
      log,
    });
    log(`engine: onnxruntime device=${device} precision=${precision} (${engine.info.detail}; ${why})`);
    return { engine, info: engine.info, backend };
  };

  if (settings.engine === 'tfjs') {
    try {
      return await tfjs(settings.tfBackend, 'CONTOUR_ENGINE=tfjs');
    } catch (error) {
      throw new EngineSelectionError(`CONTOUR_ENGINE=tfjs cannot load: ${message(error)}`);
    }
  }
  if (settings.engine === 'onnxruntime') {
    const device =
      settings.device ?? (probe.hasOrtCudaProvider() && probe.gpus().length > 0 ? 'cuda' : 'cpu');
    if (device === 'cuda' && !probe.hasOrtCudaProvider()) {
      throw new EngineSelectionError(
        'CONTOUR_ENGINE=onnxruntime with device cuda needs the ONNX Runtime CUDA provider (libonnxruntime_providers_cuda.so, installed by the CUDA 12 image), which is missing',
      );
    }
    try {
      return await ortEngine(device, 'CONTOUR_ENGINE=onnxruntime');
    } catch (error) {
      throw new EngineSelectionError(`CONTOUR_ENGINE=onnxruntime (${device}) cannot load: ${message(error)}`);
    }
  }

  // auto
  const gpuBlocker = tfjsGpuBlocker(probe);
  if (!gpuBlocker) {
    try {
      return await tfjs('tensorflow-gpu', 'auto: supported GPU');
    } catch (error) {
      log(`engine: passed over tfjs-node-gpu: ${message(error)}`);
    }
  } else {
    log(`engine: passed over tfjs-node-gpu: ${gpuBlocker}`);
  }
  if (settings.device !== 'cpu') {
    if (probe.hasOrtCudaProvider() && probe.gpus().length > 0) {
      try {
        return await ortEngine('cuda', 'auto: CUDA provider installed');
      } catch (error) {
        log(`engine: passed over onnxruntime cuda: ${message(error)}`);
      }
    } else {
      log('engine: passed over onnxruntime cuda: provider not installed or no GPU');
    }
  }
  try {
    return await ortEngine('cpu', 'auto');
  } catch (error) {
    log(`engine: passed over onnxruntime cpu: ${message(error)}`);
  }
  return tfjs(settings.tfBackend ?? 'wasm', 'auto: fallback');
}
