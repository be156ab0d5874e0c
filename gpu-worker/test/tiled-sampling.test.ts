import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../src/models/vae.ts';
import { ControlNetPipeline } from '../src/pipelines/controlnet-pipeline.ts';
import { gaussianNoise } from '../src/pipelines/noise.ts';
import { type SampleRequest, sampleLatents, tileStarts } from '../src/pipelines/sample.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import { openReference, relativeError } from './parity-helpers.ts';

describe('latent tiling (upscale passes over a memory cap)', () => {
  let unet: UNetModel;
  let controlnet: ControlNetModel;
  let vaeDecoder: VaeDecoder;
  let context: tf.Tensor3D;
  let uncontext: tf.Tensor3D;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    const { weights, io, config } = await openReference('refA');
    unet = new UNetModel(config.unet);
    controlnet = new ControlNetModel(config.controlnet);
    vaeDecoder = new VaeDecoder(config.vae);
    await loadParams(unet.params, weights, originalLayout('unet'));
    await loadParams(controlnet.params, weights, originalLayout('controlnet'));
    await loadParams(vaeDecoder.params, weights, originalLayout('vae-decoder'));
    context = tf.tensor3d(await io.readFloat32('in.context'), [2, 7, 24]).slice([0, 0, 0], [1, -1, -1]);
    uncontext = tf
      .tensor3d(await io.readFloat32('in.uncond_context'), [2, 7, 24])
      .slice([0, 0, 0], [1, -1, -1]);
    await weights.close();
    await io.close();
  });

  afterAll(() => {
    tf.dispose([context, uncontext]);
    unet.dispose();
    controlnet.dispose();
    vaeDecoder.dispose();
  });

  it('places windows with the requested overlap, the last flush with the end', () => {
    expect(tileStarts(16, 8, 4)).toEqual([0, 4, 8]);
    expect(tileStarts(20, 8, 2)).toEqual([0, 6, 12]);
    expect(tileStarts(8, 8, 4)).toEqual([0]);
    expect(tileStarts(6, 8, 4)).toEqual([0]);
  });

  it('averages the windows: one tiled DDIM step equals the mean of the per-window steps', async () => {
    const xT = tf.tensor4d(gaussianNoise(5, 0, 16 * 8 * 4), [1, 8, 16, 4]);
    const hint = tf.tensor4d(
      gaussianNoise(6, 0, 64 * 128 * 3).map((v) => Math.abs(v) % 1),
      [1, 64, 128, 3],
    );
    const encodedHint = controlnet.encodeHint(hint);
    const base = (x: tf.Tensor4D, h: tf.Tensor4D): SampleRequest => ({
      unet,
      xT: x,
      context,
      uncontext,
      guidanceScale: 7,
      controls: [{ net: controlnet, encodedHint: h, strength: 1, start: 0, end: 1 }],
      steps: 1,
      eta: 0,
      guessMode: false,
    });
    const tiled = await sampleLatents({ ...base(xT, encodedHint), tiles: { size: 8, overlap: 4 } });
    // Per-window runs (DDIM's step is affine in eps, so averaging steps = stepping the averaged eps).
    const sum = new Float32Array(16 * 8 * 4);
    const count = new Float32Array(16 * 8);
    for (const x0 of [0, 4, 8]) {
      const crop = <T extends tf.Tensor4D>(t: T) => t.slice([0, 0, x0, 0], [-1, 8, 8, -1]) as T;
      const [xs, hs] = [crop(xT), crop(encodedHint)];
      const out = await sampleLatents(base(xs, hs));
      const values = await out.data();
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++) {
          count[y * 16 + x0 + x]!++;
          for (let c = 0; c < 4; c++) sum[(y * 16 + x0 + x) * 4 + c]! += values[(y * 8 + x) * 4 + c]!;
        }
      tf.dispose([xs, hs, out]);
    }
    const expected = sum.map((v, i) => v / count[(i / 4) | 0]!);
    expect(relativeError(await tiled.data(), expected)).toBeLessThan(1e-5);
    // Untiled differs (the windows see less context): the tiling is really in effect.
    const whole = await sampleLatents(base(xT, encodedHint));
    expect(relativeError(await whole.data(), expected)).toBeGreaterThan(1e-3);
    tf.dispose([xT, hint, encodedHint, tiled, whole]);
  });

  it('a pipeline with a latent cap tiles big requests and leaves small ones untouched', async () => {
    const vaeEncoder = new VaeEncoder(vaeDecoder.config);
    const tiling = { maxLatentPixels: 64, size: 8, overlap: 4 };
    const plain = new ControlNetPipeline({ unet, vaeDecoder, vaeEncoder });
    const capped = new ControlNetPipeline({ unet, vaeDecoder, vaeEncoder }, { tiling });
    const request = (width: number) => ({
      context,
      uncontext,
      controls: [],
      width,
      height: 64,
      steps: 2,
      guidanceScale: 7,
      eta: 0,
      seed: 3,
      numImages: 1,
      guessMode: false,
    });
    // 64x64 is an 8x8 latent: within the cap, identical.
    expect((await capped.generate(request(64))).images).toEqual((await plain.generate(request(64))).images);
    // 128x64 is 16x8: tiled, so it differs from the untiled run.
    const before = tf.memory().numTensors;
    const tiled = await capped.generate(request(128));
    expect(tf.memory().numTensors).toBe(before);
    expect(tiled.images[0]).toHaveLength(128 * 64 * 3);
    expect(tiled.images[0]).not.toEqual((await plain.generate(request(128))).images[0]);
    vaeEncoder.dispose();
  });
});
