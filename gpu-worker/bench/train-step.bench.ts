/**
 * Training-step benchmark on the tiny built-in configs: seconds per optimizer step of the decoder, the base UNet
 * and the ControlNet (locked base), on the active backend with the training kernels registered.
 *
 *   CONTOUR_TF_BACKEND=wasm npx tsx gpu-worker/bench/train-step.bench.ts [steps=3]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder } from '../src/models/vae.ts';
import { ClipTokenizer } from '../src/text/tokenizer.ts';
import { initControlNetFromUNet } from '../src/training/controlnet-init.ts';
import { circleSample, exampleOf } from '../src/training/dataset.ts';
import { initParams } from '../src/training/init.ts';
import { createFrozenClip, PromptEmbeddings } from '../src/training/text-encoder.ts';
import {
  TINY_CLIP_CONFIG,
  TINY_CONTROLNET_CONFIG,
  TINY_UNET_CONFIG,
  TINY_VAE_CONFIG,
} from '../src/training/tiny-config.ts';
import {
  type LoopResult,
  TensorDataset,
  trainBaseUNet,
  trainControlNet,
  trainDecoder,
} from '../src/training/train.ts';
import { registerTrainingKernels } from '../src/training/wasm-kernels.ts';

const steps = Number(process.argv[2] ?? 3);
const backend = await initBackend({ log: () => {} });
const registered = registerTrainingKernels();
console.log(`backend ${backend.name}; training kernels added: ${registered.join(', ') || 'none'}`);
const data = new TensorDataset(Array.from({ length: 64 }, (_, i) => exampleOf(circleSample(1, i, 64))));
const embeddings = new PromptEmbeddings(
  createFrozenClip(TINY_CLIP_CONFIG),
  await ClipTokenizer.fromOpenAIVocab(),
);

function report(name: string, batch: number, result: LoopResult): void {
  // The first step includes kernel warm-up: report the mean of the others.
  const perStep = (result.seconds * 1000) / result.steps;
  console.log(`${name.padEnd(28)} batch ${String(batch).padStart(2)}  ${(perStep / 1000).toFixed(2)} s/step`);
}

const vae = new VaeDecoder(TINY_VAE_CONFIG);
initParams(vae.params, 1);
report(
  'decoder (64x64 out)',
  8,
  await trainDecoder(vae, data, { steps, batchSize: 8, learningRate: 1e-3, seed: 1 }),
);
const unet = new UNetModel(TINY_UNET_CONFIG);
initParams(unet.params, 2);
report(
  'base UNet (8x8 latent)',
  32,
  await trainBaseUNet(unet, data, embeddings, { steps, batchSize: 32, learningRate: 5e-4, seed: 1 }),
);
const net = new ControlNetModel(TINY_CONTROLNET_CONFIG);
initControlNetFromUNet(net, unet, { seed: 3 });
report(
  'ControlNet (64x64 hint)',
  16,
  await trainControlNet(unet, net, data, embeddings, { steps, batchSize: 16, learningRate: 1e-4, seed: 1 }),
);
console.log(`tensors alive: ${tf.memory().numTensors}`);
