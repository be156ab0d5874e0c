/**
 * Denoising-step benchmark: ms per DDIM step (UNet + ControlNet, classifier-free guidance as one batch of 2)
 * for a mid-size SD1.5-shaped model at 256x256 (32x32 latent), and the achieved GFLOP/s against a plain
 * conv2d and matMul of the same backend. Weights are random (speed does not depend on their values).
 *
 *   CONTOUR_TF_BACKEND=wasm npx tsx gpu-worker/bench/denoise-step.bench.ts [model_channels=128] [steps=3]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { controlNetConfigFor, SD15_UNET_CONFIG, type UNetConfig } from '../src/models/config.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { flopCounter } from '../src/models/layers.ts';
import type { ParamStore } from '../src/models/params.ts';
import { UNetModel } from '../src/models/unet.ts';
import { gaussianNoise } from '../src/pipelines/noise.ts';

const modelChannels = Number(process.argv[2] ?? 128);
const timedSteps = Number(process.argv[3] ?? 3);
const size = 256;

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

async function timeIt(run: () => tf.Tensor | tf.Tensor[], repeats: number): Promise<number> {
  const warm = run();
  await Promise.all((Array.isArray(warm) ? warm : [warm]).map((t) => t.data()));
  tf.dispose(warm);
  const start = performance.now();
  for (let i = 0; i < repeats; i++) {
    const out = run();
    await Promise.all((Array.isArray(out) ? out : [out]).map((t) => t.data()));
    tf.dispose(out);
  }
  return (performance.now() - start) / repeats;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const unetConfig: UNetConfig = { ...SD15_UNET_CONFIG, model_channels: modelChannels };
  const unet = new UNetModel(unetConfig);
  const controlnet = new ControlNetModel(controlNetConfigFor(unetConfig));
  randomise(unet.params, 1);
  randomise(controlnet.params, 2);

  const latent = size / 8;
  const x = tf.tensor4d(gaussianNoise(3, 0, 2 * latent * latent * 4), [2, latent, latent, 4]);
  const context = tf.tensor3d(gaussianNoise(4, 0, 2 * 77 * 768), [2, 77, 768]);
  const hint = tf
    .tensor4d(gaussianNoise(5, 0, size * size * 3), [1, size, size, 3])
    .abs()
    .clipByValue(0, 1);
  const encodedHint = controlnet.encodeHint(hint as tf.Tensor4D);

  const step = (batch: tf.Tensor4D, ctx: tf.Tensor3D) =>
    tf.tidy(() => {
      const t = Array<number>(batch.shape[0]).fill(501);
      return unet.forward(batch, t, ctx, controlnet.forward(batch, t, ctx, encodedHint));
    });
  flopCounter.enabled = true;
  tf.dispose(step(x, context));
  flopCounter.enabled = false;
  const stepFlops = flopCounter.flops;

  const batchedMs = await timeIt(() => step(x, context), timedSteps);
  const x1 = x.slice([0, 0, 0, 0], [1, -1, -1, -1]);
  const c1 = context.slice([0, 0, 0], [1, -1, -1]);
  const splitMs = await timeIt(() => [step(x1, c1), step(x1, c1)], timedSteps);

  // Reference kernels of the same backend.
  const convIn = tf.randomNormal([2, 32, 32, 256]) as tf.Tensor4D;
  const convW = tf.randomNormal([3, 3, 256, 256]) as tf.Tensor4D;
  const convMs = await timeIt(() => tf.conv2d(convIn, convW, 1, 'same'), 5);
  const convFlops = 2 * 2 * 32 * 32 * 256 * 256 * 9;
  const a = tf.randomNormal([1024, 1024]) as tf.Tensor2D;
  const b = tf.randomNormal([1024, 1024]) as tf.Tensor2D;
  const matMulMs = await timeIt(() => tf.matMul(a, b), 5);
  const matMulFlops = 2 * 1024 ** 3;

  const gflops = (flops: number, ms: number) => flops / ms / 1e6;
  const peak = Math.max(gflops(convFlops, convMs), gflops(matMulFlops, matMulMs));
  console.log(`backend: ${backend.name} (${backend.package})`);
  console.log(
    `model: SD1.5 layout, model_channels ${modelChannels}, channel_mult [1,2,4,4], context 77x768, ${size}x${size}`,
  );
  console.log(`step FLOPs (UNet + ControlNet, CFG batch 2): ${(stepFlops / 1e9).toFixed(1)} GFLOP`);
  console.log(
    `ms per denoising step, CFG batched (batch 2): ${batchedMs.toFixed(0)} ms -> ${gflops(stepFlops, batchedMs).toFixed(1)} GFLOP/s`,
  );
  console.log(
    `ms per denoising step, CFG as two batch-1 passes: ${splitMs.toFixed(0)} ms -> ${gflops(stepFlops, splitMs).toFixed(1)} GFLOP/s`,
  );
  console.log(
    `plain conv2d 3x3 [2,32,32,256]x256: ${convMs.toFixed(1)} ms -> ${gflops(convFlops, convMs).toFixed(1)} GFLOP/s`,
  );
  console.log(
    `plain matMul 1024^3: ${matMulMs.toFixed(1)} ms -> ${gflops(matMulFlops, matMulMs).toFixed(1)} GFLOP/s`,
  );
  console.log(
    `step efficiency vs best plain kernel: ${((100 * gflops(stepFlops, Math.min(batchedMs, splitMs))) / peak).toFixed(0)}%`,
  );
  tf.dispose([x, x1, c1, context, hint, encodedHint, convIn, convW, a, b]);
  unet.dispose();
  controlnet.dispose();
}

await main();
