import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { UNetModel } from '../models/unet.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import { AdamW } from './adamw.ts';
import { initControlNetFromUNet, zeroModulesAreZero } from './controlnet-init.ts';
import { ControlNetLiteModel } from './controlnet-lite.ts';
import { circleSample, exampleOf } from './dataset.ts';
import { controlledEps, type DiffusionBatch, diffusionLoss, drawDiffusion } from './diffusion.ts';
import { initParams } from './init.ts';
import { createFrozenClip, PromptEmbeddings } from './text-encoder.ts';
import { TEST_CONTROLNET_CONFIG, TEST_UNET_CONFIG, TINY_CLIP_CONFIG } from './tiny-config.ts';
import { TensorDataset, trainControlNet } from './train.ts';
import { registerTrainingKernels } from './wasm-kernels.ts';

const SIZE = 32;

describe('ControlNet trainer (tiny config)', () => {
  let embeddings: PromptEmbeddings;
  let data: TensorDataset;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    registerTrainingKernels();
    embeddings = new PromptEmbeddings(
      createFrozenClip(TINY_CLIP_CONFIG),
      await ClipTokenizer.fromOpenAIVocab(),
    );
    data = new TensorDataset(Array.from({ length: 8 }, (_, i) => exampleOf(circleSample(2, i, SIZE))));
  });

  afterAll(() => {
    embeddings.dispose();
    data.dispose();
  });

  function baseUNet(): UNetModel {
    const unet = new UNetModel(TEST_UNET_CONFIG);
    initParams(unet.params, 31);
    return unet;
  }

  function fixedBatch(): DiffusionBatch {
    return { latents: data.latents, context: embeddings.batch(data.prompts), hint: data.sources };
  }

  it('AdamW takes the decoupled-decay step of torch.optim.AdamW', () => {
    const w = tf.variable(tf.tensor1d([1, -2]));
    const optimizer = new AdamW([{ variables: [w], learningRate: 0.1 }], { weightDecay: 0.5 });
    optimizer.apply({ [w.name]: tf.tensor1d([0.3, -0.4]) });
    // Step 1: m_hat = g, v_hat = g^2 -> update = sign(g) (+eps), plus decay lr * wd * w.
    const expected = [1 - 0.1 * (1 + 0.5 * 1), -2 - 0.1 * (-1 + 0.5 * -2)];
    const got = Array.from(w.dataSync());
    expect(got[0]).toBeCloseTo(expected[0]!, 5);
    expect(got[1]).toBeCloseTo(expected[1]!, 5);
    optimizer.dispose();
    w.dispose();
  });

  it('zero convolutions leave the base output unchanged at step 0 (Gaussian ones do not)', () => {
    const unet = baseUNet();
    const batch = fixedBatch();
    const draw = drawDiffusion(5, 0, batch.latents.shape);
    for (const joinInit of ['zero', 'gaussian'] as const) {
      const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
      const { copied } = initControlNetFromUNet(net, unet, { seed: 4, joinInit });
      expect(copied).toBeGreaterThan(20);
      expect(zeroModulesAreZero(net)).toBe(joinInit === 'zero');
      const difference = tf.tidy(() => {
        const noisy = batch.latents.mul(0.5).add(draw.noise.mul(0.8)) as tf.Tensor4D;
        const alone = unet.forward(noisy, draw.timesteps, batch.context);
        const controlled = controlledEps(unet, net, noisy, draw.timesteps, batch);
        return alone.sub(controlled).abs().max().dataSync()[0]!;
      });
      if (joinInit === 'zero') expect(difference).toBe(0);
      else expect(difference).toBeGreaterThan(1e-3);
      net.dispose();
    }
    tf.dispose([batch.context, draw.noise]);
    unet.dispose();
  });

  it('trains a few steps: loss on a fixed batch goes down, the base stays locked', async () => {
    const unet = baseUNet();
    const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    initControlNetFromUNet(net, unet, { seed: 4 });
    const batch = fixedBatch();
    const draws = [0, 1, 2].map((k) => drawDiffusion(77, k, batch.latents.shape));
    const fixedLoss = () =>
      draws.reduce(
        (sum, draw) => sum + tf.tidy(() => diffusionLoss(unet, net, batch, draw).dataSync()[0]!),
        0,
      ) / 3;
    const lockedBefore = unet.params.get('input_blocks.1.0.in_layers.2.weight').dataSync().slice();
    const before = fixedLoss();
    const result = await trainControlNet(unet, net, data, embeddings, {
      steps: 8,
      batchSize: 4,
      accumulate: 2,
      learningRate: 2e-3,
      promptDrop: 0.5,
      seed: 3,
    });
    const after = fixedLoss();
    expect(result.steps).toBe(8);
    expect(after).toBeLessThan(before * 0.97);
    expect(zeroModulesAreZero(net)).toBe(false);
    expect(Array.from(unet.params.get('input_blocks.1.0.in_layers.2.weight').dataSync())).toEqual(
      Array.from(lockedBefore),
    );
    tf.dispose(batch.context);
    tf.dispose(draws.map((d) => d.noise));
    net.dispose();
    unet.dispose();
  });

  it('--sd-locked false trains the UNet decoder half only; --only-mid-control trains only the middle output', async () => {
    const unet = baseUNet();
    const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    initControlNetFromUNet(net, unet, { seed: 4 });
    const snapshot = (name: string) => Array.from(unet.params.get(name).dataSync());
    const encoderBefore = snapshot('input_blocks.1.0.in_layers.2.weight');
    const decoderBefore = snapshot('output_blocks.0.0.in_layers.2.weight');
    await trainControlNet(unet, net, data, embeddings, {
      steps: 2,
      batchSize: 2,
      learningRate: 1e-3,
      seed: 5,
      sdLocked: false,
      onlyMidControl: true,
    });
    expect(snapshot('input_blocks.1.0.in_layers.2.weight')).toEqual(encoderBefore);
    expect(snapshot('output_blocks.0.0.in_layers.2.weight')).not.toEqual(decoderBefore);
    const maxAbs = (name: string) => tf.tidy(() => net.params.get(name).abs().max().dataSync()[0]!);
    expect(maxAbs('zero_convs.0.0.weight')).toBe(0);
    expect(maxAbs('middle_block_out.0.weight')).toBeGreaterThan(0);
    net.dispose();
    unet.dispose();
  });

  it('ControlNet-lite: the residuals of the full copy in shape, the base unchanged at step 0, and it trains', async () => {
    const unet = baseUNet();
    const lite = new ControlNetLiteModel(TEST_CONTROLNET_CONFIG);
    const full = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    initControlNetFromUNet(lite, unet, { seed: 4 });
    initControlNetFromUNet(full, unet, { seed: 4 });
    // Outside the (shared) hint encoder, one conv per block is a fraction of the copy.
    const count = (net: { params: { specs: Map<string, number[]> } }) =>
      [...net.params.specs]
        .filter(([name]) => !name.startsWith('input_hint_block.'))
        .reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
    expect(count(lite)).toBeLessThan(count(full) / 2);
    const batch = fixedBatch();
    const draw = drawDiffusion(5, 0, batch.latents.shape);
    tf.tidy(() => {
      const noisy = batch.latents.mul(0.5).add(draw.noise.mul(0.8)) as tf.Tensor4D;
      const hintLite = lite.encodeHint(batch.hint!);
      const hintFull = full.encodeHint(batch.hint!);
      const shapes = (outs: tf.Tensor4D[]) => outs.map((t) => t.shape.join('x'));
      expect(shapes(lite.forward(noisy, draw.timesteps, batch.context, hintLite))).toEqual(
        shapes(full.forward(noisy, draw.timesteps, batch.context, hintFull)),
      );
      const alone = unet.forward(noisy, draw.timesteps, batch.context);
      const controlled = controlledEps(unet, lite, noisy, draw.timesteps, batch);
      expect(alone.sub(controlled).abs().max().dataSync()[0]).toBe(0);
    });
    const fixedLoss = () => tf.tidy(() => diffusionLoss(unet, lite, batch, draw).dataSync()[0]!);
    const before = fixedLoss();
    await trainControlNet(unet, lite, data, embeddings, {
      steps: 6,
      batchSize: 4,
      learningRate: 2e-3,
      seed: 3,
    });
    expect(fixedLoss()).toBeLessThan(before);
    expect(zeroModulesAreZero(lite)).toBe(false);
    tf.dispose([batch.context, draw.noise]);
    lite.dispose();
    full.dispose();
    unet.dispose();
  });
});
