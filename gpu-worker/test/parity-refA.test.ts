import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder } from '../src/models/vae.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import type { SafetensorsFile } from '../src/weights/safetensors.ts';
import {
  ENGINES,
  nhwcToNchwData,
  openReference,
  readNhwc,
  relativeError,
  testEngine,
} from './parity-helpers.ts';

describe.each(ENGINES)('parity with the original ControlNet code (refA, %s)', (engineName) => {
  let engine: ModelEngine;
  let io: SafetensorsFile;
  let unet: UNetModel;
  let controlnet: ControlNetModel;
  let decoder: VaeDecoder;
  let x: tf.Tensor4D;
  let hint: tf.Tensor4D;
  let context: tf.Tensor3D;
  let timesteps: number[];

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    engine = await testEngine(engineName);
    const ref = await openReference('refA');
    io = ref.io;
    unet = new UNetModel(ref.config.unet);
    controlnet = new ControlNetModel(ref.config.controlnet);
    decoder = new VaeDecoder(ref.config.vae);
    await loadParams(unet.params, ref.weights, originalLayout('unet'));
    await loadParams(controlnet.params, ref.weights, originalLayout('controlnet'));
    await loadParams(decoder.params, ref.weights, originalLayout('vae-decoder'));
    await ref.weights.close();
    x = await readNhwc(io, 'in.x');
    hint = await readNhwc(io, 'in.hint');
    context = tf.tensor3d(
      await io.readFloat32('in.context'),
      io.info('in.context').shape as [number, number, number],
    );
    timesteps = [...(await io.readFloat32('in.t'))];
  });

  afterAll(async () => {
    tf.dispose([x, hint, context]);
    unet.dispose();
    controlnet.dispose();
    decoder.dispose();
    await io.close();
    await engine.dispose();
  });

  it('computes the 13 residuals and eps with and without control', async () => {
    const encodedHint = await engine.encodeHint(controlnet, hint);
    const residuals = await engine.controlNet(controlnet, x, timesteps, context, encodedHint);
    expect(residuals).toHaveLength(13);
    for (let i = 0; i < 13; i++) {
      const expected = await io.readFloat32(`out.control.${i}`);
      expect(relativeError(nhwcToNchwData(residuals[i]!), expected), `control.${i}`).toBeLessThan(1e-4);
    }
    const controlled = await engine.unet(unet, x, timesteps, context, residuals);
    const plain = await engine.unet(unet, x, timesteps, context);
    expect(
      relativeError(nhwcToNchwData(controlled), await io.readFloat32('out.eps_controlled')),
    ).toBeLessThan(1e-4);
    expect(relativeError(nhwcToNchwData(plain), await io.readFloat32('out.eps_plain'))).toBeLessThan(1e-4);
    tf.dispose([encodedHint, ...residuals, controlled, plain]);
  });

  it('decodes the sampled latents like the ldm decoder', async () => {
    const samples = await readNhwc(io, 'out.samples');
    const decoded = await engine.decodeLatents(decoder, samples);
    expect(relativeError(nhwcToNchwData(decoded), await io.readFloat32('out.decoded'))).toBeLessThan(1e-3);
    tf.dispose([samples, decoded]);
  });
});
