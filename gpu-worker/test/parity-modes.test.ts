import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../src/models/vae.ts';
import {
  compositeInpaint,
  gaussianBlurMask,
  img2imgStartStep,
  inpaintHint,
  latentMask,
  noiseLatents,
} from '../src/pipelines/image-modes.ts';
import { sampleLatents } from '../src/pipelines/sample.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import { SafetensorsFile } from '../src/weights/safetensors.ts';
import {
  ENGINES,
  fixturePath,
  nhwcToNchwData,
  openReference,
  readNhwc,
  relativeError,
  testEngine,
} from './parity-helpers.ts';

/** Bytes of an io tensor stored as float. */
async function readBytes(io: SafetensorsFile, name: string): Promise<Uint8Array> {
  return Uint8Array.from(await io.readFloat32(name));
}

describe('image-mode helpers against OpenCV (refM)', () => {
  it('blurs the mask like cv2.GaussianBlur, area-averages it like INTER_AREA and makes the 1.1 inpaint hint', async () => {
    const io = await SafetensorsFile.open(fixturePath('modes/refM.io.safetensors'));
    const mask = Float32Array.from(await io.readFloat32('in.mask'), (v) => v / 255);
    const blurred = gaussianBlurMask(mask, 64, 64, 3);
    expect(relativeError(blurred, await io.readFloat32('out.mask_pixel'))).toBeLessThan(1e-5);
    expect(relativeError(latentMask(blurred, 64, 64), await io.readFloat32('out.mask_latent'))).toBeLessThan(
      1e-5,
    );
    const hint = inpaintHint(await readBytes(io, 'in.image'), blurred);
    const expected = tf.tidy(() =>
      tf.tensor4d(hint, [1, 64, 64, 3]).transpose([0, 3, 1, 2]).dataSync(),
    ) as Float32Array;
    expect(relativeError(expected, await io.readFloat32('out.inpaint_hint'))).toBeLessThan(1e-6);
    await io.close();
  });

  it('scales the step count as diffusers get_timesteps', () => {
    expect(img2imgStartStep(4, 0.5)).toBe(2);
    expect(img2imgStartStep(20, 0.75)).toBe(5);
    expect(img2imgStartStep(10, 0.3)).toBe(7);
    expect(img2imgStartStep(20, 1)).toBe(0);
    expect(img2imgStartStep(20, 0.01)).toBe(19); // at least one step
    expect(() => img2imgStartStep(20, 0)).toThrow(RangeError);
  });
});

describe.each(ENGINES)('image modes against the original ControlNet code (refM, %s)', (engineName) => {
  let engine: ModelEngine;
  let io: SafetensorsFile;
  let unet: UNetModel;
  let controlnet: ControlNetModel;
  let decoder: VaeDecoder;
  let encoder: VaeEncoder;
  let context: tf.Tensor3D;
  let uncontext: tf.Tensor3D;
  let xT: tf.Tensor4D;
  let image: Uint8Array;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    engine = await testEngine(engineName);
    const ref = await openReference('refA');
    unet = new UNetModel(ref.config.unet);
    controlnet = new ControlNetModel(ref.config.controlnet);
    decoder = new VaeDecoder(ref.config.vae);
    encoder = new VaeEncoder(ref.config.vae);
    await loadParams(unet.params, ref.weights, originalLayout('unet'));
    await loadParams(controlnet.params, ref.weights, originalLayout('controlnet'));
    await loadParams(decoder.params, ref.weights, originalLayout('vae-decoder'));
    const encoderWeights = await SafetensorsFile.open(fixturePath('modes/refM.encoder.safetensors'));
    await loadParams(encoder.params, encoderWeights, originalLayout('vae-encoder'));
    await encoderWeights.close();
    const contexts = tf.tensor3d(await ref.io.readFloat32('in.context'), [2, 7, 24]);
    const uncontexts = tf.tensor3d(await ref.io.readFloat32('in.uncond_context'), [2, 7, 24]);
    context = contexts.slice([0, 0, 0], [1, -1, -1]);
    uncontext = uncontexts.slice([0, 0, 0], [1, -1, -1]);
    tf.dispose([contexts, uncontexts]);
    await ref.weights.close();
    await ref.io.close();
    io = await SafetensorsFile.open(fixturePath('modes/refM.io.safetensors'));
    xT = await readNhwc(io, 'in.x_T');
    image = await readBytes(io, 'in.image');
  });

  afterAll(async () => {
    tf.dispose([context, uncontext, xT]);
    unet.dispose();
    controlnet.dispose();
    decoder.dispose();
    encoder.dispose();
    await io.close();
    await engine.dispose();
  });

  /** The engine's scaled posterior mean of the test image. */
  const encodeImage = async () => {
    const pixels = tf.tidy(() =>
      tf.tensor4d(image, [1, 64, 64, 3], 'int32').toFloat().div(127.5).sub(1),
    ) as tf.Tensor4D;
    const latents = await engine.encodeMean(encoder, pixels);
    pixels.dispose();
    return latents;
  };

  it('encodes images like ldm Encoder + quant_conv (moments and scaled mean)', async () => {
    const images = await readNhwc(io, 'in.enc_images');
    const moments = encoder.forward(images);
    expect(relativeError(nhwcToNchwData(moments), await io.readFloat32('out.moments'))).toBeLessThan(1e-4);
    const mean = await engine.encodeMean(encoder, images);
    expect(relativeError(nhwcToNchwData(mean), await io.readFloat32('out.latent_mean'))).toBeLessThan(1e-4);
    tf.dispose([images, moments, mean]);
  });

  it('runs img2img (strength 0.5 of 4 DDIM steps) like noising + the original DDIM decode', async () => {
    const x0 = await encodeImage();
    const refHint = await openReference('refA');
    const hints = await readNhwc(refHint.io, 'in.hint');
    await refHint.weights.close();
    await refHint.io.close();
    const firstHint = hints.slice([0, 0, 0, 0], [1, -1, -1, -1]);
    const encodedHint = await engine.encodeHint(controlnet, firstHint);
    const startStep = img2imgStartStep(4, 0.5);
    let start: tf.Tensor4D | undefined;
    const timesteps: number[] = [];
    const samples = await sampleLatents({
      unet,
      xT,
      context,
      uncontext,
      guidanceScale: 9,
      controls: [{ net: controlnet, encodedHint, strength: 1, start: 0, end: 1 }],
      steps: 4,
      eta: 0,
      guessMode: false,
      engine,
      start: {
        step: startStep,
        latents: (sampler) => {
          const latents = noiseLatents(sampler, startStep, x0, xT);
          start = latents.clone();
          return latents;
        },
      },
      onProgress: (p) => timesteps.push(p.timestep),
    });
    expect(timesteps).toEqual([251, 1]);
    expect(relativeError(nhwcToNchwData(start!), await io.readFloat32('out.img2img_start'))).toBeLessThan(
      1e-4,
    );
    expect(relativeError(nhwcToNchwData(samples), await io.readFloat32('out.img2img_samples'))).toBeLessThan(
      1e-3,
    );
    const decoded = await engine.decodeLatents(decoder, samples);
    expect(relativeError(nhwcToNchwData(decoded), await io.readFloat32('out.img2img_decoded'))).toBeLessThan(
      2e-3,
    );
    tf.dispose([x0, hints, firstHint, encodedHint, start!, samples, decoded]);
  });

  it('runs 1.1-head inpainting like gradio_inpaint.py: latent blending each step, exact unmasked pixels', async () => {
    const x0 = await encodeImage();
    const mask = Float32Array.from(await io.readFloat32('in.mask'), (v) => v / 255);
    const pixelMask = gaussianBlurMask(mask, 64, 64, 3);
    const keep = tf.tidy(() =>
      tf.sub(1, tf.tensor4d(latentMask(pixelMask, 64, 64), [1, 8, 8, 1])),
    ) as tf.Tensor4D;
    const hint = tf.tensor4d(inpaintHint(image, pixelMask), [1, 64, 64, 3]);
    const encodedHint = await engine.encodeHint(controlnet, hint);
    const blendNoise: tf.Tensor4D[] = [];
    for (let i = 0; i < 4; i++) blendNoise.push(await readNhwc(io, `in.blend_noise.${i}`));
    const samples = await sampleLatents({
      unet,
      xT,
      context,
      uncontext,
      guidanceScale: 9,
      controls: [{ net: controlnet, encodedHint, strength: 1, start: 0, end: 1 }],
      steps: 4,
      eta: 0,
      guessMode: false,
      engine,
      blend: (sampler, step, x) =>
        noiseLatents(sampler, step, x0, blendNoise[step]!)
          .mul(keep)
          .add(x.mul(tf.sub(1, keep))),
    });
    expect(relativeError(nhwcToNchwData(samples), await io.readFloat32('out.inpaint_samples'))).toBeLessThan(
      1e-3,
    );
    const decoded = await engine.decodeLatents(decoder, samples);
    const result = compositeInpaint(await decoded.data(), image, pixelMask);
    const expected = await readBytes(io, 'out.inpaint_result');
    let maxDiff = 0;
    let unmasked = 0;
    for (let i = 0; i < result.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(result[i]! - expected[i]!));
      if (pixelMask[(i / 3) | 0] === 0) {
        unmasked++;
        expect(result[i]).toBe(image[i]);
      }
    }
    expect(maxDiff).toBeLessThanOrEqual(1);
    expect(unmasked).toBeGreaterThan(1000);
    tf.dispose([x0, keep, hint, encodedHint, ...blendNoise, samples, decoded]);
  });
});
