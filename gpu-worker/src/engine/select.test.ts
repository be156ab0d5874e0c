import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EngineSelectionError,
  type EngineSettings,
  engineSettingsFromEnv,
  type MachineProbe,
  selectEngine,
  tfjsGpuBlocker,
} from './select.ts';

/** A machine with these GPUs and libraries; tfjs-node-gpu and the ORT CUDA provider as given. */
function machine(options: {
  gpus?: string[];
  libs?: string[];
  tfjsGpu?: boolean;
  ortCuda?: boolean;
}): MachineProbe {
  return {
    gpus: () => options.gpus ?? [],
    hasLibrary: (name) => (options.libs ?? []).includes(name),
    hasPackage: (name) => name === '@tensorflow/tfjs-node-gpu' && (options.tfjsGpu ?? false),
    hasOrtCudaProvider: () => options.ortCuda ?? false,
  };
}

const CUDA11 = ['libcudart.so.11.0', 'libcudnn.so.8'];
const auto: EngineSettings = {
  engine: 'auto',
  device: undefined,
  precision: undefined,
  threads: undefined,
  tfBackend: undefined,
};

describe('engine settings from the environment', () => {
  it('reads the engine, device, precision and threads; a tfjs backend alone means tfjs', () => {
    expect(
      engineSettingsFromEnv({
        CONTOUR_ENGINE: 'onnxruntime',
        CONTOUR_ENGINE_DEVICE: 'cpu',
        CONTOUR_ENGINE_PRECISION: 'fp16',
        CONTOUR_ENGINE_THREADS: '2',
      }),
    ).toEqual({ engine: 'onnxruntime', device: 'cpu', precision: 'fp16', threads: 2, tfBackend: undefined });
    expect(engineSettingsFromEnv({}).engine).toBe('auto');
    expect(engineSettingsFromEnv({ CONTOUR_TF_BACKEND: 'wasm' }).engine).toBe('tfjs');
  });

  it('names the variable at fault', () => {
    expect(() => engineSettingsFromEnv({ CONTOUR_ENGINE: 'torch' })).toThrow(/CONTOUR_ENGINE=torch/);
    expect(() => engineSettingsFromEnv({ CONTOUR_ENGINE_DEVICE: 'tpu' })).toThrow(/CONTOUR_ENGINE_DEVICE/);
    expect(() => engineSettingsFromEnv({ CONTOUR_ENGINE_THREADS: '0' })).toThrow(/CONTOUR_ENGINE_THREADS/);
  });
});

describe('tfjs-node-gpu support probe', () => {
  it('passes a supported GPU with CUDA 11 and cuDNN 8, and says why it passes over the others', () => {
    expect(tfjsGpuBlocker(machine({ gpus: ['8.0'], libs: CUDA11, tfjsGpu: true }))).toBeUndefined();
    expect(tfjsGpuBlocker(machine({ gpus: ['8.0'], libs: CUDA11 }))).toMatch(/not installed/);
    expect(tfjsGpuBlocker(machine({ libs: CUDA11, tfjsGpu: true }))).toMatch(/no NVIDIA GPU/);
    expect(tfjsGpuBlocker(machine({ gpus: ['9.0'], libs: CUDA11, tfjsGpu: true }))).toMatch(/9\.0.*Hopper/);
    expect(tfjsGpuBlocker(machine({ gpus: ['8.6'], libs: ['libcudnn.so.8'], tfjsGpu: true }))).toMatch(
      /libcudart\.so\.11\.0/,
    );
    expect(tfjsGpuBlocker(machine({ gpus: ['8.6'], libs: ['libcudart.so.11.0'], tfjsGpu: true }))).toMatch(
      /libcudnn\.so\.8/,
    );
  });
});

describe('selectEngine', () => {
  let cacheDir: string;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'contour-select-'));
  });
  afterAll(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('auto on a CPU machine: ONNX Runtime CPU, after one line on why tfjs-node-gpu was passed over', async () => {
    const lines: string[] = [];
    const selected = await selectEngine({
      settings: auto,
      probe: machine({}),
      log: (line) => lines.push(line),
      cacheDir,
    });
    expect(selected.info).toMatchObject({ engine: 'onnxruntime', device: 'cpu', precision: 'fp32' });
    expect(lines[0]).toMatch(/passed over tfjs-node-gpu: @tensorflow\/tfjs-node-gpu is not installed/);
    expect(lines.at(-1)).toMatch(/engine: onnxruntime device=cpu precision=fp32/);
    await selected.engine.dispose();
  });

  it('auto with a broken ONNX Runtime install: one line and tfjs (wasm), no crash', async () => {
    const lines: string[] = [];
    const selected = await selectEngine({
      settings: auto,
      probe: machine({}),
      log: (line) => lines.push(line),
      cacheDir,
      importOrt: () => Promise.reject(new Error('libonnxruntime.so.1: cannot open shared object file')),
    });
    expect(selected.info.engine).toBe('tfjs');
    expect(lines).toContainEqual(expect.stringMatching(/passed over onnxruntime cpu: libonnxruntime\.so\.1/));
  });

  it('a forced engine that cannot load fails naming what is missing', async () => {
    await expect(
      selectEngine({
        settings: { ...auto, engine: 'onnxruntime', device: 'cuda' },
        probe: machine({}),
        log: () => {},
      }),
    ).rejects.toThrow(/libonnxruntime_providers_cuda\.so/);
    const broken = selectEngine({
      settings: { ...auto, engine: 'onnxruntime' },
      probe: machine({}),
      log: () => {},
      cacheDir,
      importOrt: () => Promise.reject(new Error("Cannot find module 'onnxruntime-node'")),
    });
    await expect(broken).rejects.toBeInstanceOf(EngineSelectionError);
    await expect(broken).rejects.toThrow(
      /CONTOUR_ENGINE=onnxruntime \(cpu\) cannot load: Cannot find module/,
    );
  });
});
