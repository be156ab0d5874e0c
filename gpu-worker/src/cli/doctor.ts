/**
 * `contour-worker doctor [--json] [--skip-speed]`: what an operator checks before a GPU host takes traffic. The GPU
 * (driver, name, compute capability, memory, CUDA / cuDNN libraries), each engine and whether it can run here
 * (and why not), the reference parity fixture (the original ControlNet code's refA outputs) on every usable
 * engine/device/precision, and denoising steps/s at 512x512 (CFG, one ControlNet) on the configured model.
 * Exits 1 when a usable engine fails parity or no engine can run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { referenceConfig, relativeError } from '../engine/reference.ts';
import {
  type EngineSettings,
  type MachineProbe,
  selectEngine,
  systemProbe,
  tfjsGpuBlocker,
} from '../engine/select.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { UNetModel } from '../models/unet.ts';
import { parseModelConfig, readModelConfig } from '../registry/config.ts';
import { createBuiltinRegistry, createRegistryFromConfig, type ModelRegistry } from '../registry/registry.ts';
import { originalLayout } from '../weights/keymap.ts';
import { loadParams } from '../weights/load.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';

/** One NVIDIA GPU as nvidia-smi reports it. */
export interface GpuInfo {
  name: string;
  driver: string;
  computeCapability: string;
  memoryMiB: number;
}

/** One engine/device/precision the worker can be told to use, and whether it runs here. */
export interface EngineCheck {
  engine: 'tfjs' | 'onnxruntime';
  device: string;
  precision: 'fp32' | 'fp16';
  usable: boolean;
  /** Why it cannot run here (absent when usable). */
  reason?: string;
  /** Parity with the original code's refA outputs (absent when not usable or fixtures are missing). */
  parity?: { worstRelError: number; tolerance: number; pass: boolean };
  /** Denoising steps per second at 512x512, CFG (batch 2), one ControlNet. */
  speed?: { model: string; stepsPerSecond: number; msPerStep: number };
  /** Why the speed run failed on an engine that passed parity (e.g. the model does not fit its memory). */
  speedError?: string;
}

/** Everything `doctor` found. */
export interface DoctorReport {
  gpus: GpuInfo[];
  /** Shared libraries looked for, and whether the dynamic loader finds them. */
  libraries: Record<string, boolean>;
  engines: EngineCheck[];
  /** Where the parity fixture was looked for, when it was not found. */
  fixturesMissing?: string;
  ok: boolean;
}

/** Libraries the GPU runtimes load: tfjs-node-gpu needs CUDA 11 + cuDNN 8, ONNX Runtime CUDA needs 12 + 9. */
const LIBRARIES = [
  'libcuda.so.1',
  'libcudart.so.11.0',
  'libcudnn.so.8',
  'libcudart.so.12',
  'libcublas.so.12',
  'libcudnn.so.9',
];

/** fp32 engines must match the original code as closely as the CI parity tests do; fp16 within half precision. */
const TOLERANCE = { fp32: 1e-4, fp16: 2e-2 } as const;

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/parity/', import.meta.url));

/** nvidia-smi's view of the GPUs (empty when there is no driver or GPU). */
export function probeGpus(): GpuInfo[] {
  try {
    const out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=name,driver_version,compute_cap,memory.total', '--format=csv,noheader,nounits'],
      { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name = '', driver = '', computeCapability = '', memory = '0'] = line
          .split(',')
          .map((s) => s.trim());
        return { name, driver, computeCapability, memoryMiB: Number(memory) };
      });
  } catch {
    return [];
  }
}

/** The refA reference models and io (small SD1.5 layout, outputs of the original ControlNet code). */
async function refA() {
  const weights = await SafetensorsFile.open(join(FIXTURES, 'refA.weights.safetensors'));
  const io = await SafetensorsFile.open(join(FIXTURES, 'refA.io.safetensors'));
  const config = referenceConfig(weights.metadata);
  const unet = new UNetModel(config.unet);
  const controlnet = new ControlNetModel(config.controlnet);
  await loadParams(unet.params, weights, originalLayout('unet'));
  await loadParams(controlnet.params, weights, originalLayout('controlnet'));
  await weights.close();
  const nhwc = async (key: string) => {
    const data = await io.readFloat32(key);
    return tf.tidy(() => tf.tensor(data, io.info(key).shape).transpose([0, 2, 3, 1])) as tf.Tensor4D;
  };
  return { io, unet, controlnet, nhwc };
}

/** refA's 13 residuals and controlled eps through `engine`; the worst relative error against the original. */
async function parityOn(engine: ModelEngine): Promise<number> {
  const { io, unet, controlnet, nhwc } = await refA();
  try {
    const x = await nhwc('in.x');
    const hint = await nhwc('in.hint');
    const context = tf.tensor3d(
      await io.readFloat32('in.context'),
      io.info('in.context').shape as [number, number, number],
    );
    const t = [...(await io.readFloat32('in.t'))];
    const encoded = await engine.encodeHint(controlnet, hint);
    const residuals = await engine.controlNet(controlnet, x, t, context, encoded);
    const eps = await engine.unet(unet, x, t, context, residuals);
    const nchw = (v: tf.Tensor4D) => tf.tidy(() => v.transpose([0, 3, 1, 2]).dataSync() as Float32Array);
    let worst = 0;
    for (let i = 0; i < residuals.length; i++) {
      worst = Math.max(worst, relativeError(nchw(residuals[i]!), await io.readFloat32(`out.control.${i}`)));
    }
    worst = Math.max(worst, relativeError(nchw(eps), await io.readFloat32('out.eps_controlled')));
    tf.dispose([x, hint, context, encoded, ...residuals, eps]);
    return worst;
  } finally {
    unet.dispose();
    controlnet.dispose();
    await io.close();
  }
}

/**
 * The model doctor times: the configured weights (`CONTOUR_MODEL_CONFIG`), else the synthetic full-size ones
 * when `CONTOUR_SYNTHETIC_DIR` holds them (bench/synthetic-weights.ts), else the built-in random SD-layout model.
 */
async function speedRegistry(): Promise<ModelRegistry> {
  const configPath = process.env['CONTOUR_MODEL_CONFIG'];
  if (configPath) return createRegistryFromConfig(await readModelConfig(configPath));
  const synthetic = process.env['CONTOUR_SYNTHETIC_DIR'];
  const base = synthetic && join(synthetic, 'sd15-single', 'v1-5-pruned-emaonly.safetensors');
  const head = synthetic && join(synthetic, 'control_v11p_sd15_canny');
  if (base && head && existsSync(base) && existsSync(head)) {
    return createRegistryFromConfig(
      parseModelConfig(
        {
          base: { path: base, layout: 'single-file', name: 'sd15-synthetic-full-size' },
          heads: { canny: head },
        },
        synthetic,
      ),
    );
  }
  return createBuiltinRegistry({ model: 'random' });
}

/** Steps/s of one CFG denoising step (batch 2) with one ControlNet at 512x512 (see {@link speedRegistry}). */
async function speedOn(engine: ModelEngine, steps: number): Promise<EngineCheck['speed']> {
  const registry = await speedRegistry();
  const type = registry.servedTypes[0]!;
  const lease = await registry.acquire([type]);
  try {
    const net = lease.heads.get(type)!;
    const { unet } = registry.base;
    const latent = 64;
    const x = tf.randomNormal(
      [2, latent, latent, unet.config.in_channels],
      0,
      1,
      'float32',
      1,
    ) as tf.Tensor4D;
    const context = tf.randomNormal([2, 77, unet.config.context_dim], 0, 1, 'float32', 2) as tf.Tensor3D;
    const hint = tf.randomUniform([1, latent * 8, latent * 8, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const encodedHint = await engine.encodeHint(net, hint);
    const units = [{ net, encodedHint, scales: Array<number>(13).fill(1) }];
    const step = async (t: number) => {
      const eps = await engine.controlledEps(unet, x, [t, t], context, units, 2);
      await eps.data();
      eps.dispose();
    };
    await step(999); // warm-up: graph build / load and first-run allocation
    const started = performance.now();
    for (let i = 0; i < steps; i++) await step(900 - i * 50);
    const msPerStep = (performance.now() - started) / steps;
    tf.dispose([x, context, hint, encodedHint]);
    return { model: registry.base.name, msPerStep, stepsPerSecond: 1000 / msPerStep };
  } finally {
    lease.release();
    registry.dispose();
  }
}

/**
 * The engine/device/precision combinations doctor tries, with the settings that force each; tfjs-wasm last,
 * because a wasm module that ran out of memory cannot be used again in this process.
 */
function candidates(): { check: Omit<EngineCheck, 'usable'>; settings: EngineSettings }[] {
  const base = { threads: undefined, tfBackend: undefined } as const;
  return [
    {
      check: { engine: 'tfjs', device: 'cuda', precision: 'fp32' },
      settings: {
        ...base,
        engine: 'tfjs',
        device: undefined,
        precision: undefined,
        tfBackend: 'tensorflow-gpu',
      },
    },
    {
      check: { engine: 'tfjs', device: 'cpu', precision: 'fp32' },
      settings: { ...base, engine: 'tfjs', device: undefined, precision: undefined, tfBackend: 'tensorflow' },
    },
    {
      check: { engine: 'onnxruntime', device: 'cuda', precision: 'fp16' },
      settings: { ...base, engine: 'onnxruntime', device: 'cuda', precision: 'fp16' },
    },
    {
      check: { engine: 'onnxruntime', device: 'cuda', precision: 'fp32' },
      settings: { ...base, engine: 'onnxruntime', device: 'cuda', precision: 'fp32' },
    },
    {
      check: { engine: 'onnxruntime', device: 'cpu', precision: 'fp32' },
      settings: { ...base, engine: 'onnxruntime', device: 'cpu', precision: 'fp32' },
    },
    {
      check: { engine: 'tfjs', device: 'wasm', precision: 'fp32' },
      settings: { ...base, engine: 'tfjs', device: undefined, precision: undefined, tfBackend: 'wasm' },
    },
  ];
}

/** Why a candidate cannot run, known before trying it (absent: try it). */
function knownBlocker(check: Omit<EngineCheck, 'usable'>, probe: MachineProbe): string | undefined {
  if (check.engine === 'tfjs' && check.device === 'cuda') return tfjsGpuBlocker(probe);
  if (check.engine === 'tfjs' && check.device === 'cpu' && !probe.hasPackage('@tensorflow/tfjs-node'))
    return '@tensorflow/tfjs-node is not installed';
  if (check.engine === 'onnxruntime' && check.device === 'cuda') {
    if (!probe.hasOrtCudaProvider())
      return 'the ONNX Runtime CUDA provider is not installed (use the CUDA 12 image)';
    if (probe.gpus().length === 0) return 'no NVIDIA GPU answers nvidia-smi';
  }
  return undefined;
}

/** Runs every check. `speedSteps` 0 skips the speed run. */
export async function runDoctorChecks(
  options: { speedSteps?: number; probe?: MachineProbe } = {},
): Promise<DoctorReport> {
  const probe = options.probe ?? systemProbe;
  const speedSteps = options.speedSteps ?? 3;
  const libraries = Object.fromEntries(LIBRARIES.map((name) => [name, probe.hasLibrary(name)]));
  const fixturesPresent = existsSync(join(FIXTURES, 'refA.weights.safetensors'));
  const engines: EngineCheck[] = [];
  for (const { check, settings } of candidates()) {
    const blocker = knownBlocker(check, probe);
    if (blocker) {
      engines.push({ ...check, usable: false, reason: blocker });
      continue;
    }
    const cacheDir = await mkdtemp(join(tmpdir(), 'contour-doctor-'));
    let selected: Awaited<ReturnType<typeof selectEngine>>;
    try {
      selected = await selectEngine({ settings, probe, cacheDir, log: () => {} });
    } catch (error) {
      engines.push({ ...check, usable: false, reason: (error as Error).message });
      await rm(cacheDir, { recursive: true, force: true });
      continue;
    }
    const result: EngineCheck = { ...check, usable: true };
    try {
      if (fixturesPresent) {
        const worst = await parityOn(selected.engine);
        const tolerance = TOLERANCE[check.precision];
        result.parity = { worstRelError: worst, tolerance, pass: worst <= tolerance };
      }
    } catch (error) {
      result.usable = false;
      result.reason = `failed while running: ${(error as Error).message.split('\n')[0]}`;
    }
    try {
      if (result.usable && speedSteps > 0) result.speed = await speedOn(selected.engine, speedSteps);
    } catch (error) {
      // The engine works; the model to time does not fit it (tfjs-wasm's 4 GiB heap and full-size SD1.5).
      result.speedError = (error as Error).message.split('\n')[0];
    } finally {
      await selected.engine.dispose();
      await rm(cacheDir, { recursive: true, force: true });
    }
    engines.push(result);
  }
  await initBackend({ log: () => {} }).catch(() => undefined);
  const usable = engines.filter((e) => e.usable);
  return {
    gpus: probeGpus(),
    libraries,
    engines,
    ...(fixturesPresent ? {} : { fixturesMissing: FIXTURES }),
    ok: usable.length > 0 && usable.every((e) => e.parity === undefined || e.parity.pass),
  };
}

/** Engines in order of preference when none was timed: GPU first, fused fp16 kernels before fp32. */
const PREFERENCE = [
  'onnxruntime/cuda/fp16',
  'onnxruntime/cuda/fp32',
  'tfjs/cuda/fp32',
  'onnxruntime/cpu/fp32',
  'tfjs/cpu/fp32',
  'tfjs/wasm/fp32',
];

/** The engine to run: the fastest usable one that passed parity (by preference when none was timed). */
export function recommendedEngine(report: DoctorReport): EngineCheck | undefined {
  const good = report.engines.filter((e) => e.usable && (e.parity?.pass ?? true));
  const rank = (e: EngineCheck) => PREFERENCE.indexOf(`${e.engine}/${e.device}/${e.precision}`);
  return good.sort(
    (a, b) => (b.speed?.stepsPerSecond ?? 0) - (a.speed?.stepsPerSecond ?? 0) || rank(a) - rank(b),
  )[0];
}

/** One line that says whether the host may take traffic, and on what. */
export function verdict(report: DoctorReport): string {
  const best = recommendedEngine(report);
  const failed = report.engines.filter((e) => e.usable && e.parity && !e.parity.pass);
  if (!best) return 'NOT OK: no engine can run here';
  if (failed.length) {
    return `NOT OK: parity failed on ${failed.map((e) => `${e.engine}/${e.device}/${e.precision}`).join(', ')}`;
  }
  const onGpu = best.device === 'cuda';
  return `OK: use CONTOUR_ENGINE=${best.engine} CONTOUR_ENGINE_DEVICE=${best.device} CONTOUR_ENGINE_PRECISION=${best.precision}${onGpu || report.gpus.length === 0 ? '' : ' (a GPU is present but no GPU engine can run: see the reasons above)'}`;
}

/** The machine-readable report (`doctor --json`). */
export function doctorJson(report: DoctorReport) {
  const best = recommendedEngine(report);
  return {
    gpu: { available: report.gpus.length > 0, gpus: report.gpus, libraries: report.libraries },
    engines: report.engines.map((e) => ({
      name: e.engine,
      device: e.device,
      precision: e.precision,
      usable: e.usable,
      reason: e.reason ?? null,
      parity_max_rel_err: e.parity?.worstRelError ?? null,
      parity_tolerance: e.parity?.tolerance ?? null,
      parity_pass: e.parity?.pass ?? null,
      steps_per_s_512: e.speed?.stepsPerSecond ?? null,
      speed_model: e.speed?.model ?? null,
      speed_error: e.speedError ?? null,
    })),
    recommended_engine: best ? { name: best.engine, device: best.device, precision: best.precision } : null,
    verdict: verdict(report),
    ...(report.fixturesMissing ? { fixtures_missing: report.fixturesMissing } : {}),
    ok: report.ok,
  };
}

/** The report as the lines an operator reads. */
export function formatDoctorReport(report: DoctorReport): string[] {
  const lines: string[] = [];
  if (report.gpus.length === 0) lines.push('gpu: none (nvidia-smi absent or no GPU answers)');
  for (const gpu of report.gpus) {
    lines.push(
      `gpu: ${gpu.name}, compute capability ${gpu.computeCapability}, ${gpu.memoryMiB} MiB, driver ${gpu.driver}`,
    );
  }
  lines.push(
    `libraries: ${Object.entries(report.libraries)
      .map(([name, found]) => `${name} ${found ? 'found' : 'missing'}`)
      .join(', ')}`,
  );
  if (report.fixturesMissing) lines.push(`parity: fixtures not found in ${report.fixturesMissing}`);
  for (const e of report.engines) {
    const name = `engine=${e.engine} device=${e.device} precision=${e.precision}`;
    if (!e.usable) {
      lines.push(`${name}: not usable (${e.reason})`);
      continue;
    }
    const parts = ['usable'];
    if (e.parity) {
      parts.push(
        `parity ${e.parity.pass ? 'pass' : 'FAIL'} (worst rel error ${e.parity.worstRelError.toExponential(2)}, tolerance ${e.parity.tolerance})`,
      );
    }
    if (e.speedError) parts.push(`no speed: ${e.speedError}`);
    if (e.speed)
      parts.push(
        `${e.speed.stepsPerSecond.toFixed(2)} steps/s at 512x512 CFG + 1 ControlNet (${e.speed.model})`,
      );
    lines.push(`${name}: ${parts.join(', ')}`);
  }
  const best = recommendedEngine(report);
  if (best)
    lines.push(`recommended: engine=${best.engine} device=${best.device} precision=${best.precision}`);
  lines.push(`verdict: ${verdict(report)}`);
  return lines;
}

/** `contour-worker doctor` with its own arguments; resolves to the exit code. */
export async function runDoctor(
  argv: string[],
  log: (line: string) => void = (l) => console.log(l),
): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      'skip-speed': { type: 'boolean', default: false },
      steps: { type: 'string', default: '3' },
    },
    strict: true,
  });
  const steps = values['skip-speed'] ? 0 : Number(values.steps);
  const report = await runDoctorChecks({ speedSteps: Number.isInteger(steps) && steps >= 0 ? steps : 3 });
  if (values.json) log(JSON.stringify(doctorJson(report), null, 2));
  else for (const line of formatDoctorReport(report)) log(line);
  return report.ok ? 0 : 1;
}
