import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import type { ParamStore } from '../models/params.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder } from '../models/vae.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../weights/checkpoint.ts';
import { makeTrainable, saveControlNet, saveUNet, saveVaeDecoder, tfToTorchLayout } from './checkpoint.ts';
import { initControlNetFromUNet } from './controlnet-init.ts';
import { initParams } from './init.ts';
import { TEST_CONTROLNET_CONFIG, TEST_UNET_CONFIG, TINY_VAE_CONFIG } from './tiny-config.ts';

function expectSameParams(a: ParamStore, b: ParamStore): void {
  expect([...b.specs.keys()].sort()).toEqual([...a.specs.keys()].sort());
  for (const name of a.specs.keys()) {
    expect(Array.from(b.get(name).dataSync()), name).toEqual(Array.from(a.get(name).dataSync()));
  }
}

describe('training checkpoints in the diffusers layout', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'ckpt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tfToTorchLayout inverts the loader layout conversion', () => {
    const values = Float32Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => i);
    const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    net.params.setFromTorch(
      'input_hint_block.0.weight',
      new Float32Array(16 * 3 * 9).map((_, i) => i),
    );
    const stored = net.params.get('input_hint_block.0.weight').dataSync() as Float32Array;
    expect(Array.from(tfToTorchLayout(stored, [16, 3, 3, 3]))).toEqual(
      Array.from({ length: 16 * 27 }, (_, i) => i),
    );
    expect(values.length).toBe(54);
    net.dispose();
  });

  it('a trained ControlNet saved as config.json + safetensors loads back through the worker loader', async () => {
    const unet = new UNetModel(TEST_UNET_CONFIG);
    initParams(unet.params, 1);
    const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    initControlNetFromUNet(net, unet, { seed: 2, joinInit: 'gaussian' });
    makeTrainable(net.params); // saved from tf.Variables, as the trainer does
    await saveControlNet(join(dir, 'controlnet'), net.params, TEST_CONTROLNET_CONFIG);
    const config = JSON.parse(await readFile(join(dir, 'controlnet', 'config.json'), 'utf8'));
    expect(config._class_name).toBe('ControlNetModel');
    expect(config.block_out_channels).toEqual([32, 64]);
    const loaded = await loadControlNet(join(dir, 'controlnet'));
    expect(loaded.config).toMatchObject({ model_channels: 32, channel_mult: [1, 2], hint_channels: 3 });
    expectSameParams(net.params, loaded.params);
    loaded.dispose();
    net.dispose();

    await saveUNet(join(dir, 'unet'), unet.params, TEST_UNET_CONFIG);
    const loadedUNet = await loadUNet(join(dir, 'unet'));
    expectSameParams(unet.params, loadedUNet.params);
    loadedUNet.dispose();
    unet.dispose();
  });

  it('the tiny VAE decoder round-trips, attention projections included', async () => {
    const vae = new VaeDecoder(TINY_VAE_CONFIG);
    initParams(vae.params, 3);
    await saveVaeDecoder(join(dir, 'vae'), vae.params, TINY_VAE_CONFIG);
    const loaded = await loadVaeDecoder(join(dir, 'vae'));
    expect(loaded.config.scale_factor).toBe(1);
    expectSameParams(vae.params, loaded.params);
    const z = tf.randomNormal([1, 2, 2, 4]) as tf.Tensor4D;
    expect(Array.from(loaded.forward(z).dataSync())).toEqual(Array.from(vae.forward(z).dataSync()));
    loaded.dispose();
    vae.dispose();
  });
});
