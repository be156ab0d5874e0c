import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../src/models/vae.ts';
import {
  ControlNetPipeline,
  type GenerateRequest,
  PipelineError,
} from '../src/pipelines/controlnet-pipeline.ts';
import { gaussianBlurMask } from '../src/pipelines/image-modes.ts';
import { actualSamplerSteps, SAMPLER_NAMES } from '../src/schedulers/sampler.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import { SafetensorsFile } from '../src/weights/safetensors.ts';
import { ENGINES, fixturePath, openReference, readNhwc, testEngine } from './parity-helpers.ts';

/** Every sampler on tfjs; on ONNX Runtime (same sampler code, other model calls) one of each noise form. */
const SAMPLERS_OF = {
  tfjs: SAMPLER_NAMES,
  onnxruntime: ['ddim', 'euler_a', 'dpmpp_2m'],
} as const;

describe.each(ENGINES)('ControlNetPipeline img2img and inpaint (%s)', (engineName) => {
  let engine: ModelEngine;
  let pipeline: ControlNetPipeline;
  let controlnet: ControlNetModel;
  let hint: tf.Tensor4D;
  let context: tf.Tensor3D;
  let uncontext: tf.Tensor3D;
  let image: Uint8Array;
  let mask: Float32Array;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    engine = await testEngine(engineName);
    const { weights, io, config } = await openReference('refA');
    const unet = new UNetModel(config.unet);
    const vaeDecoder = new VaeDecoder(config.vae);
    const vaeEncoder = new VaeEncoder(config.vae);
    controlnet = new ControlNetModel(config.controlnet);
    await loadParams(unet.params, weights, originalLayout('unet'));
    await loadParams(vaeDecoder.params, weights, originalLayout('vae-decoder'));
    await loadParams(controlnet.params, weights, originalLayout('controlnet'));
    const encoderWeights = await SafetensorsFile.open(fixturePath('modes/refM.encoder.safetensors'));
    await loadParams(vaeEncoder.params, encoderWeights, originalLayout('vae-encoder'));
    await encoderWeights.close();
    pipeline = new ControlNetPipeline({ unet, vaeDecoder, vaeEncoder }, { engine });
    const hints = await readNhwc(io, 'in.hint');
    hint = hints.slice([0, 0, 0, 0], [1, -1, -1, -1]);
    hints.dispose();
    context = tf.tensor3d(await io.readFloat32('in.context'), [2, 7, 24]).slice([0, 0, 0], [1, -1, -1]);
    uncontext = tf
      .tensor3d(await io.readFloat32('in.uncond_context'), [2, 7, 24])
      .slice([0, 0, 0], [1, -1, -1]);
    await weights.close();
    await io.close();
    const modes = await SafetensorsFile.open(fixturePath('modes/refM.io.safetensors'));
    image = Uint8Array.from(await modes.readFloat32('in.image'));
    mask = Float32Array.from(await modes.readFloat32('in.mask'), (v) => v / 255);
    await modes.close();
  });

  afterAll(async () => {
    tf.dispose([hint, context, uncontext]);
    pipeline.models.unet.dispose();
    pipeline.models.vaeDecoder.dispose();
    pipeline.models.vaeEncoder!.dispose();
    controlnet.dispose();
    await engine.dispose();
  });

  const request = (overrides: Partial<GenerateRequest> = {}): GenerateRequest => ({
    context,
    uncontext,
    controls: [{ net: controlnet, hint, strength: 1 }],
    width: 64,
    height: 64,
    steps: 4,
    guidanceScale: 7,
    eta: 0,
    seed: 99,
    numImages: 1,
    guessMode: false,
    ...overrides,
  });

  it.each(SAMPLERS_OF[engineName])(
    'img2img with %s runs int(steps * strength) steps, seeded, leak-free',
    async (scheduler) => {
      const before = tf.memory().numTensors;
      const progress: number[] = [];
      const init = { image, strength: 0.5 };
      const result = await pipeline.generate(
        request({ scheduler, init, onProgress: (p) => progress.push(p.timestep) }),
      );
      const total = actualSamplerSteps(scheduler, 4);
      expect(result.steps).toBe(Math.floor(total * 0.5));
      expect(progress).toHaveLength(result.steps);
      expect(tf.memory().numTensors).toBe(before);
      const again = await pipeline.generate(request({ scheduler, init }));
      expect(again.images).toEqual(result.images);
      const full = await pipeline.generate(request({ scheduler, init: { image, strength: 1 } }));
      expect(full.steps).toBe(total);
      expect(full.images[0]).not.toEqual(result.images[0]);
    },
  );

  it.each(SAMPLERS_OF[engineName])(
    'inpaint with %s keeps every unmasked pixel of the input exactly',
    async (scheduler) => {
      const before = tf.memory().numTensors;
      const result = await pipeline.generate(request({ scheduler, init: { image, mask, maskBlur: 3 } }));
      expect(tf.memory().numTensors).toBe(before);
      const blurred = gaussianBlurMask(mask, 64, 64, 3);
      for (const output of result.images) {
        let kept = 0;
        let changed = 0;
        for (let i = 0; i < output.length; i++) {
          const m = blurred[(i / 3) | 0]!;
          if (m === 0) {
            kept++;
            if (output[i] !== image[i]) throw new Error(`unmasked byte ${i} changed`);
          } else if (m > 0.99 && output[i] !== image[i]) changed++;
        }
        expect(kept).toBeGreaterThan(1000);
        expect(changed).toBeGreaterThan(100);
      }
    },
  );

  it('rejects init inputs it cannot run', async () => {
    await expect(pipeline.generate(request({ init: { image: image.subarray(3) } }))).rejects.toThrow(
      PipelineError,
    );
    await expect(pipeline.generate(request({ init: { image, strength: 0 } }))).rejects.toThrow(/strength/);
    await expect(pipeline.generate(request({ init: { image, mask: mask.subarray(1) } }))).rejects.toThrow(
      /mask/,
    );
    const noEncoder = new ControlNetPipeline({
      unet: pipeline.models.unet,
      vaeDecoder: pipeline.models.vaeDecoder,
    });
    await expect(noEncoder.generate(request({ init: { image } }))).rejects.toThrow(/VAE encoder/);
  });
});
