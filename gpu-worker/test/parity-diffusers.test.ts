import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import type { ModelEngine } from '../src/engine/model-engine.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder } from '../src/models/vae.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../src/weights/checkpoint.ts';
import {
  controlNetConfigToDiffusers,
  originalToDiffusersTensors,
  unetDiffusersConfig,
  vaeConfigToDiffusers,
  writeDiffusersComponent,
} from '../src/weights/convert.ts';
import {
  ENGINES,
  nhwcToNchwData,
  openReference,
  readNhwc,
  relativeError,
  testEngine,
} from './parity-helpers.ts';

describe.each(ENGINES)('refA converted to the diffusers layout and loaded back (%s)', (engineName) => {
  let engine: ModelEngine;
  let dir: string;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    engine = await testEngine(engineName);
    dir = await mkdtemp(join(tmpdir(), 'contour-diffusers-'));
    const { weights, io, config } = await openReference('refA');
    await io.close();
    // Converting needs only the declared parameter lists, not loaded models.
    const unet = new UNetModel(config.unet);
    const controlnet = new ControlNetModel(config.controlnet);
    const decoder = new VaeDecoder(config.vae);
    await writeDiffusersComponent(
      join(dir, 'unet'),
      unetDiffusersConfig(config.unet),
      await originalToDiffusersTensors(weights, 'unet', unet.params, config.unet),
    );
    await writeDiffusersComponent(
      join(dir, 'controlnet'),
      controlNetConfigToDiffusers(config.controlnet),
      await originalToDiffusersTensors(weights, 'controlnet', controlnet.params, config.controlnet),
    );
    await writeDiffusersComponent(
      join(dir, 'vae'),
      vaeConfigToDiffusers(config.vae),
      await originalToDiffusersTensors(weights, 'vae-decoder', decoder.params, config.vae),
    );
    await weights.close();
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
    await engine.dispose();
  });

  it('reproduces the residuals, eps and decoded image of the original code', async () => {
    const { io, weights, config } = await openReference('refA');
    await weights.close();
    const unet = await loadUNet(join(dir, 'unet'));
    const controlnet = await loadControlNet(join(dir, 'controlnet'));
    const decoder = await loadVaeDecoder(join(dir, 'vae'));
    const sorted = <T extends { attention_resolutions: number[] }>(c: T) => ({
      ...c,
      attention_resolutions: [...c.attention_resolutions].sort(),
    });
    expect(sorted(unet.config)).toEqual(sorted(config.unet));
    expect(sorted(controlnet.config)).toEqual(sorted(config.controlnet));
    expect(decoder.config).toEqual(config.vae);

    const x = await readNhwc(io, 'in.x');
    const hint = await readNhwc(io, 'in.hint');
    const context = tf.tensor3d(await io.readFloat32('in.context'), [2, 7, 24]);
    const t = [...(await io.readFloat32('in.t'))];
    const encodedHint = await engine.encodeHint(controlnet, hint);
    const residuals = await engine.controlNet(controlnet, x, t, context, encodedHint);
    for (let i = 0; i < 13; i++) {
      const expected = await io.readFloat32(`out.control.${i}`);
      expect(relativeError(nhwcToNchwData(residuals[i]!), expected), `control.${i}`).toBeLessThan(1e-4);
    }
    const eps = await engine.unet(unet, x, t, context, residuals);
    expect(relativeError(nhwcToNchwData(eps), await io.readFloat32('out.eps_controlled'))).toBeLessThan(1e-4);
    const samples = await readNhwc(io, 'out.samples');
    const decoded = await engine.decodeLatents(decoder, samples);
    expect(relativeError(nhwcToNchwData(decoded), await io.readFloat32('out.decoded'))).toBeLessThan(1e-3);

    tf.dispose([x, hint, context, encodedHint, ...residuals, eps, samples, decoded]);
    unet.dispose();
    controlnet.dispose();
    decoder.dispose();
    await io.close();
  });
});
