/**
 * Denoising-step benchmark, one run, same config and weights on every engine: ms per DDIM step (UNet +
 * ControlNet, classifier-free guidance as one batch of 2) for a mid-size SD1.5-shaped model at 256x256 (32x32
 * latent), with the step's GFLOP/s, and each engine's plain 3x3 conv and matMul GFLOP/s for comparison.
 * Weights are random (speed does not depend on their values). Engines: tfjs on wasm (the CPU backend the worker
 * used before engines) and ONNX Runtime CPU fp32 (the fused UNet+ControlNet step graph the sampler runs).
 * Every time is the best of its repeats (steps: `steps`, kernels: 5).
 *
 *   npx tsx gpu-worker/bench/denoise-step.bench.ts [model_channels=128] [steps=3]
 *   (CONTOUR_ENGINE_THREADS sets ONNX Runtime's intra-op threads; default one per core.)
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { tfModelEngine } from '../src/engine/model-engine.ts';
import { OrtModelEngine } from '../src/engine/onnx/ort-engine.ts';
import { controlNetConfigFor, SD15_UNET_CONFIG, type UNetConfig } from '../src/models/config.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { flopCounter } from '../src/models/layers.ts';
import type { ParamStore } from '../src/models/params.ts';
import { UNetModel } from '../src/models/unet.ts';
import { gaussianNoise } from '../src/pipelines/noise.ts';

const modelChannels = Number(process.argv[2] ?? 128);
const timedSteps = Number(process.argv[3] ?? 3);
const size = 256;
const CONV = { shape: [2, 32, 32, 256] as [number, number, number, number], out: 256 };
const CONV_FLOPS = 2 * 2 * 32 * 32 * 256 * 256 * 9;
const MATMUL_N = 1024;
const MATMUL_FLOPS = 2 * MATMUL_N ** 3;

function randomise(params: ParamStore, seed: number): void {
  let stream = 0;
  for (const [name, shape] of params.specs) {
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const count = shape.reduce((a, b) => a * b, 1);
    const values = gaussianNoise(seed, stream++, count);
    const scale = shape.length === 1 ? 0.1 : 1 / Math.sqrt(fanIn);
    for (let i = 0; i < count; i++) values[i] = values[i]! * scale + (name.endsWith('norm.weight') ? 1 : 0);
    params.setFromTorch(name, values);
  }
}

/**
 * Fastest of `repeats` timed runs after one warm-up (which also builds graphs), in ms: the minimum is the least
 * disturbed by other processes on a shared machine.
 */
async function timeIt(run: () => Promise<tf.Tensor | tf.Tensor[]>, repeats: number): Promise<number> {
  const settle = async (out: tf.Tensor | tf.Tensor[]) => {
    await Promise.all((Array.isArray(out) ? out : [out]).map((t) => t.data()));
    tf.dispose(out);
  };
  await settle(await run());
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await settle(await run());
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

const gflops = (flops: number, ms: number) => flops / ms / 1e6;

async function main(): Promise<void> {
  await initBackend({ force: 'wasm', log: () => {} });
  const unetConfig: UNetConfig = { ...SD15_UNET_CONFIG, model_channels: modelChannels };
  const unet = new UNetModel(unetConfig);
  const controlnet = new ControlNetModel(controlNetConfigFor(unetConfig));
  randomise(unet.params, 1);
  randomise(controlnet.params, 2);

  const latent = size / 8;
  const x = tf.tensor4d(gaussianNoise(3, 0, 2 * latent * latent * 4), [2, latent, latent, 4]);
  const context = tf.tensor3d(gaussianNoise(4, 0, 2 * 77 * 768), [2, 77, 768]);
  const hint = tf.tidy(() =>
    tf
      .tensor4d(gaussianNoise(5, 0, size * size * 3), [1, size, size, 3])
      .abs()
      .clipByValue(0, 1),
  ) as tf.Tensor4D;
  const timesteps = [501, 501];
  const encodedHint = controlnet.encodeHint(hint);
  const units = [{ net: controlnet, encodedHint, scales: Array<number>(13).fill(1) }];

  // FLOPs of one step (the same graph on every engine), counted on the eager pass.
  flopCounter.enabled = true;
  tf.dispose(await tfModelEngine.controlledEps(unet, x, timesteps, context, units, 2));
  flopCounter.enabled = false;
  const stepFlops = flopCounter.flops;

  const convIn = tf.randomNormal(CONV.shape) as tf.Tensor4D;
  const convW = tf.randomNormal([3, 3, CONV.shape[3], CONV.out]) as tf.Tensor4D;
  const convB = tf.zeros([CONV.out]) as tf.Tensor1D;
  const a = tf.randomNormal([MATMUL_N, MATMUL_N]) as tf.Tensor2D;
  const b = tf.randomNormal([MATMUL_N, MATMUL_N]) as tf.Tensor2D;

  const cacheDir = await mkdtemp(join(tmpdir(), 'contour-bench-onnx-'));
  const threads = Number(process.env['CONTOUR_ENGINE_THREADS']) || undefined;
  const ortEngine = new OrtModelEngine(ort, { device: 'cpu', precision: 'fp32', threads, cacheDir });

  /** Plain kernels on an engine: tfjs eagerly, ONNX Runtime as one-node graphs built by the same builder. */
  const plainKernels = async (engine: ModelEngine) => {
    if (engine === tfModelEngine) {
      return {
        convMs: await timeIt(async () => tf.conv2d(convIn, convW, 1, 'same'), 5),
        matMulMs: await timeIt(async () => tf.matMul(a, b), 5),
      };
    }
    const conv = await ortEngine.session('bench-conv', [], CONV, (g) =>
      g.output('y', g.conv2d(g.input('x', CONV.shape, 'image'), convW, convB, 1, 1), 'image'),
    );
    const matMul = await ortEngine.session('bench-matmul', [], MATMUL_N, (g) =>
      g.output('y', g.linear(g.input('a', [MATMUL_N, MATMUL_N]), b)),
    );
    const convFeed = { x: new ort.Tensor('float32', convIn.dataSync() as Float32Array, CONV.shape) };
    const matFeed = { a: new ort.Tensor('float32', a.dataSync() as Float32Array, [MATMUL_N, MATMUL_N]) };
    const runOrt = (session: ort.InferenceSession, feed: Record<string, ort.Tensor>) => async () => {
      await session.run(feed);
      return [] as tf.Tensor[];
    };
    return {
      convMs: await timeIt(runOrt(conv, convFeed), 5),
      matMulMs: await timeIt(runOrt(matMul, matFeed), 5),
    };
  };

  console.log(
    `model: SD1.5 layout, model_channels ${modelChannels}, channel_mult [1,2,4,4], context 77x768, ${size}x${size}, UNet + 1 ControlNet, CFG batch 2: ${(stepFlops / 1e9).toFixed(1)} GFLOP per step`,
  );
  const results: Record<string, { stepMs: number; convMs: number }> = {};
  for (const engine of [tfModelEngine, ortEngine] as ModelEngine[]) {
    const { info } = engine;
    const stepMs = await timeIt(
      () => engine.controlledEps(unet, x, timesteps, context, units, 2),
      timedSteps,
    );
    const { convMs, matMulMs } = await plainKernels(engine);
    results[info.engine] = { stepMs, convMs };
    console.log(
      `engine=${info.engine} device=${info.device} precision=${info.precision} ms_per_step=${stepMs.toFixed(0)} gflops=${gflops(stepFlops, stepMs).toFixed(1)}`,
    );
    console.log(
      `engine=${info.engine} plain conv2d 3x3 [2,32,32,256]x256: ${gflops(CONV_FLOPS, convMs).toFixed(1)} GFLOP/s; matMul ${MATMUL_N}^3: ${gflops(MATMUL_FLOPS, matMulMs).toFixed(1)} GFLOP/s`,
    );
  }
  const tfjs = results['tfjs']!;
  const onnx = results['onnxruntime']!;
  console.log(
    `onnxruntime vs tfjs-wasm: ${(tfjs.stepMs / onnx.stepMs).toFixed(1)}x faster per step (target >= 5x); onnxruntime step at ${((100 * gflops(stepFlops, onnx.stepMs)) / gflops(CONV_FLOPS, onnx.convMs)).toFixed(0)}% of its plain-conv GFLOP/s (target >= 80%)`,
  );
  tf.dispose([x, context, hint, encodedHint, convIn, convW, convB, a, b]);
  await ortEngine.dispose();
  await rm(cacheDir, { recursive: true, force: true });
  unet.dispose();
  controlnet.dispose();
}

await main();
