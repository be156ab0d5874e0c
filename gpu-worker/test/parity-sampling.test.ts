import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder } from '../src/models/vae.ts';
import { sampleLatents } from '../src/pipelines/sample.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import {
  ENGINES,
  nhwcToNchwData,
  openReference,
  readNhwc,
  relativeError,
  testEngine,
} from './parity-helpers.ts';

/** Runs the reference's DDIM sampling and decode and compares them with the original code's outputs. */
async function checkSampling(
  engine: ModelEngine,
  name: 'refA' | 'refC_f16_guess',
  options: { batchGuidance: boolean; checkSinglePasses?: boolean },
) {
  const { weights, io, config } = await openReference(name);
  const meta = weights.metadata;
  const unet = new UNetModel(config.unet);
  const controlnet = new ControlNetModel(config.controlnet);
  const decoder = new VaeDecoder(config.vae);
  try {
    await loadParams(unet.params, weights, originalLayout('unet'));
    await loadParams(controlnet.params, weights, originalLayout('controlnet'));
    await loadParams(decoder.params, weights, originalLayout('vae-decoder'));
    const tensor3d = async (key: string) =>
      tf.tensor3d(await io.readFloat32(key), io.info(key).shape as [number, number, number]);
    const context = await tensor3d('in.context');
    const uncontext = await tensor3d('in.uncond_context');
    const hint = await readNhwc(io, 'in.hint');
    const xT = await readNhwc(io, 'in.x_T');
    const encodedHint = await engine.encodeHint(controlnet, hint);
    if (options.checkSinglePasses) {
      const x = await readNhwc(io, 'in.x');
      const t = [...(await io.readFloat32('in.t'))];
      const residuals = await engine.controlNet(controlnet, x, t, context, encodedHint);
      for (let i = 0; i < 13; i++) {
        const expected = await io.readFloat32(`out.control.${i}`);
        expect(relativeError(nhwcToNchwData(residuals[i]!), expected), `control.${i}`).toBeLessThan(1e-4);
      }
      const eps = await engine.unet(unet, x, t, context, residuals);
      expect(relativeError(nhwcToNchwData(eps), await io.readFloat32('out.eps_controlled'))).toBeLessThan(
        1e-4,
      );
      tf.dispose([x, eps, ...residuals]);
    }
    const steps: number[] = [];
    const samples = await sampleLatents({
      unet,
      xT,
      context,
      uncontext,
      guidanceScale: Number(meta['scale']),
      controls: [{ net: controlnet, encodedHint, strength: Number(meta['strength']), start: 0, end: 1 }],
      steps: Number(meta['steps']),
      eta: Number(meta['eta']),
      guessMode: meta['guess_mode'] === 'True',
      batchGuidance: options.batchGuidance,
      engine,
      onProgress: (p) => steps.push(p.timestep),
    });
    expect(steps).toHaveLength(Number(meta['steps']));
    expect(relativeError(nhwcToNchwData(samples), await io.readFloat32('out.samples'))).toBeLessThan(1e-3);
    const decoded = await engine.decodeLatents(decoder, samples);
    expect(relativeError(nhwcToNchwData(decoded), await io.readFloat32('out.decoded'))).toBeLessThan(1e-3);
    tf.dispose([context, uncontext, hint, xT, encodedHint, samples, decoded]);
  } finally {
    unet.dispose();
    controlnet.dispose();
    decoder.dispose();
    await weights.close();
    await io.close();
  }
}

describe.each(ENGINES)('DDIM sampling parity with the original code (%s)', (engineName) => {
  let engine: ModelEngine;
  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    engine = await testEngine(engineName);
  });

  afterAll(async () => {
    await engine.dispose();
  });

  it('refA: 4 steps, CFG 9, strength 1, batched guidance', async () => {
    await checkSampling(engine, 'refA', { batchGuidance: true });
  });

  it('refA: the same with separate conditional and unconditional passes', async () => {
    await checkSampling(engine, 'refA', { batchGuidance: false });
  });

  it('refC: F16 weights, guess mode, strength 0.7, 5 steps, CFG 6', async () => {
    await checkSampling(engine, 'refC_f16_guess', { batchGuidance: true, checkSinglePasses: true });
  });
});
