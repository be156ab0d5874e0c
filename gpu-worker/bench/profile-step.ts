/**
 * Per-kernel time profile of one denoising step (UNet + ControlNet, CFG batch 2) on the selected backend:
 * shows where the step spends the time that the plain conv/matMul peak does not explain.
 *
 *   CONTOUR_TF_BACKEND=wasm npx tsx gpu-worker/bench/profile-step.ts [model_channels=64]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { controlNetConfigFor, SD15_UNET_CONFIG } from '../src/models/config.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import type { ParamStore } from '../src/models/params.ts';
import { UNetModel } from '../src/models/unet.ts';
import { gaussianNoise } from '../src/pipelines/noise.ts';

const modelChannels = Number(process.argv[2] ?? 64);

function randomise(params: ParamStore, seed: number): void {
  let stream = 0;
  for (const [name, shape] of params.specs) {
    const count = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? count / shape[0]! : 1;
    const values = gaussianNoise(seed, stream++, count).map((v) => v / Math.sqrt(fanIn));
    params.setFromTorch(name, values);
  }
}

await initBackend();
const unetConfig = { ...SD15_UNET_CONFIG, model_channels: modelChannels };
const unet = new UNetModel(unetConfig);
const controlnet = new ControlNetModel(controlNetConfigFor(unetConfig));
randomise(unet.params, 1);
randomise(controlnet.params, 2);
const x = tf.tensor4d(gaussianNoise(3, 0, 2 * 32 * 32 * 4), [2, 32, 32, 4]);
const context = tf.tensor3d(gaussianNoise(4, 0, 2 * 77 * 768), [2, 77, 768]);
const encodedHint = controlnet.encodeHint(tf.zeros([1, 256, 256, 3]));
const step = () =>
  tf.tidy(() =>
    unet.forward(x, [501, 501], context, controlnet.forward(x, [501, 501], context, encodedHint)),
  );
tf.dispose(step());
const profile = await tf.profile(() => step());
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const kernel of profile.kernels) {
  const entry = byKernel.get(kernel.name) ?? { ms: 0, calls: 0 };
  entry.ms += Number(kernel.kernelTimeMs) || 0;
  entry.calls++;
  byKernel.set(kernel.name, entry);
}
const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
console.log(`model_channels ${modelChannels}, 256x256, CFG batch 2: ${total.toFixed(0)} ms in kernels`);
for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
  console.log(
    `${name.padEnd(22)} ${ms.toFixed(1).padStart(8)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${calls} calls`,
  );
}
