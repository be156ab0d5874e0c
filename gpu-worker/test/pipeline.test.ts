import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
import { type ControlNetHead, ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder } from '../src/models/vae.ts';
import {
  ControlNetPipeline,
  type GenerateRequest,
  PipelineError,
} from '../src/pipelines/controlnet-pipeline.ts';
import { GenerationAbortedError } from '../src/pipelines/sample.ts';
import { createSampler, SAMPLER_NAMES } from '../src/schedulers/sampler.ts';
import { originalLayout } from '../src/weights/keymap.ts';
import { loadParams } from '../src/weights/load.ts';
import { openReference, readNhwc, testEngine } from './parity-helpers.ts';

describe('ControlNetPipeline (refA weights, wasm backend)', () => {
  let pipeline: ControlNetPipeline;
  let controlnet: ControlNetModel;
  let hint: tf.Tensor4D;
  let context: tf.Tensor3D;
  let uncontext: tf.Tensor3D;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    const { weights, io, config } = await openReference('refA');
    const unet = new UNetModel(config.unet);
    const vaeDecoder = new VaeDecoder(config.vae);
    controlnet = new ControlNetModel(config.controlnet);
    await loadParams(unet.params, weights, originalLayout('unet'));
    await loadParams(vaeDecoder.params, weights, originalLayout('vae-decoder'));
    await loadParams(controlnet.params, weights, originalLayout('controlnet'));
    pipeline = new ControlNetPipeline({ unet, vaeDecoder });
    const allHints = await readNhwc(io, 'in.hint');
    hint = allHints.slice([0, 0, 0, 0], [1, -1, -1, -1]);
    allHints.dispose();
    context = tf.tensor3d(await io.readFloat32('in.context'), [2, 7, 24]).slice([0, 0, 0], [1, -1, -1]);
    uncontext = tf
      .tensor3d(await io.readFloat32('in.uncond_context'), [2, 7, 24])
      .slice([0, 0, 0], [1, -1, -1]);
    await weights.close();
    await io.close();
  });

  afterAll(() => {
    tf.dispose([hint, context, uncontext]);
    pipeline.models.unet.dispose();
    pipeline.models.vaeDecoder.dispose();
    controlnet.dispose();
  });

  const request = (overrides: Partial<GenerateRequest> = {}): GenerateRequest => ({
    context,
    uncontext,
    controls: [{ net: controlnet, hint, strength: 1 }],
    width: 64,
    height: 64,
    steps: 3,
    guidanceScale: 9,
    eta: 0,
    seed: 1234,
    numImages: 2,
    guessMode: false,
    ...overrides,
  });

  it('returns seeded RGB images, reports every step and leaks no tensor', async () => {
    const before = tf.memory().numTensors;
    const progress: number[] = [];
    const first = await pipeline.generate(request({ onProgress: (p) => progress.push(p.timestep) }));
    expect(tf.memory().numTensors).toBe(before);
    expect(progress).toEqual([667, 334, 1]);
    expect(first.steps).toBe(3);
    expect(first.images).toHaveLength(2);
    expect(first.images[0]).toHaveLength(64 * 64 * 3);
    expect(first.images[0]).not.toEqual(first.images[1]);
    expect(first.timings.totalMs).toBeGreaterThan(0);
    const again = await pipeline.generate(request({ eta: 0 }));
    expect(again.images).toEqual(first.images);
    const otherSeed = await pipeline.generate(request({ seed: 1235 }));
    expect(otherSeed.images[0]).not.toEqual(first.images[0]);
    const withEta = await pipeline.generate(request({ eta: 1, guessMode: true, numImages: 1 }));
    expect(withEta.images).toHaveLength(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sums several ControlNets: two units at 0.5 equal one at 1.0', async () => {
    const one = await pipeline.generate(request({ numImages: 1, steps: 2 }));
    const half = { net: controlnet, hint, strength: 0.5 };
    const two = await pipeline.generate(request({ numImages: 1, steps: 2, controls: [half, half] }));
    let maxDiff = 0;
    one.images[0]!.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - two.images[0]![i]!));
    });
    expect(maxDiff).toBeLessThanOrEqual(1);
    const off = await pipeline.generate(
      request({ numImages: 1, steps: 2, controls: [{ net: controlnet, hint, start: 0, end: 0.4 }] }),
    );
    expect(off.images[0]).not.toEqual(one.images[0]);
  });

  it('runs every sampler through the one loop: seeded, each step reported, units gated by step fraction', async () => {
    const before = tf.memory().numTensors;
    const outputs = new Map<string, Uint8Array>();
    for (const scheduler of SAMPLER_NAMES) {
      // Counts the ControlNet's passes at each model timestep: a unit on for 0.25..0.75 of 4 steps runs twice.
      const calls: number[] = [];
      const counted: ControlNetHead = {
        params: controlnet.params,
        config: controlnet.config,
        controlCount: controlnet.controlCount,
        encodeHint: (h) => controlnet.encodeHint(h),
        buildHint: (o, h) => controlnet.buildHint(o, h),
        build: (o, x, sinusoids, ctx, encoded) => controlnet.build(o, x, sinusoids, ctx, encoded),
        forward: (x, timesteps, ctx, encoded) => {
          calls.push(timesteps[0]!);
          return controlnet.forward(x, timesteps, ctx, encoded);
        },
        dispose: () => {},
      };
      const progress: number[] = [];
      const run = () =>
        pipeline.generate(
          request({
            scheduler,
            steps: 4,
            seed: 7,
            numImages: 1,
            controls: [{ net: counted, hint, start: 0.25, end: 0.75 }],
            onProgress: (p) => progress.push(p.timestep),
          }),
        );
      const first = await run();
      const timesteps = createSampler(scheduler, 4).timesteps;
      expect(first.steps).toBe(4);
      expect(progress).toEqual(timesteps);
      expect(calls).toEqual([timesteps[1], timesteps[2]]);
      // The stochastic samplers draw their per-step noise from the seed: the same seed gives the same image.
      if (scheduler === 'euler_a' || scheduler === 'lcm') expect((await run()).images).toEqual(first.images);
      outputs.set(scheduler, first.images[0]!);
    }
    expect(new Set([...outputs.values()].map((image) => image.join())).size).toBe(SAMPLER_NAMES.length);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('stops between steps when aborted, without leaking', async () => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const steps: number[] = [];
    const run = pipeline.generate(
      request({
        signal: controller.signal,
        onProgress: (p) => {
          steps.push(p.step);
          controller.abort();
        },
      }),
    );
    await expect(run).rejects.toBeInstanceOf(GenerationAbortedError);
    await expect(run).rejects.toMatchObject({ code: 'generation_aborted' });
    expect(steps).toEqual([1]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([
    ['one fused UNet + heads graph per head set', true],
    ['a shared UNet graph and a graph per head', false],
  ])(
    'gives the same images on ONNX Runtime (%s): several units with their own start/end, guess mode, CFG batching',
    async (_, fuseHeads) => {
      const engine = await testEngine('onnxruntime', { fuseHeads });
      const batched = new ControlNetPipeline(pipeline.models, { engine });
      const separate = new ControlNetPipeline(pipeline.models, { engine, batchGuidance: false });
      const tfSeparate = new ControlNetPipeline(pipeline.models, { batchGuidance: false });
      const cases: [ControlNetPipeline, ControlNetPipeline, Partial<GenerateRequest>][] = [
        [
          pipeline,
          batched,
          {
            controls: [
              { net: controlnet, hint, strength: 0.7, start: 0, end: 0.6 },
              { net: controlnet, hint, strength: 0.5, start: 0.3, end: 1 },
            ],
          },
        ],
        [
          pipeline,
          batched,
          { guessMode: true, numImages: 1, controls: [{ net: controlnet, hint, strength: 0.8 }] },
        ],
        [tfSeparate, separate, { guessMode: true, numImages: 1 }],
      ];
      for (const [onTf, onOrt, overrides] of cases) {
        const expected = await onTf.generate(request(overrides));
        const actual = await onOrt.generate(request(overrides));
        expect(actual.images).toHaveLength(expected.images.length);
        let maxDiff = 0;
        expected.images.forEach((image, j) => {
          image.forEach((v, i) => {
            maxDiff = Math.max(maxDiff, Math.abs(v - actual.images[j]![i]!));
          });
        });
        expect(maxDiff, JSON.stringify(overrides.guessMode)).toBeLessThanOrEqual(1);
      }
      await engine.dispose();
    },
  );

  it('rejects bad requests with a typed error', async () => {
    await expect(pipeline.generate(request({ width: 60 }))).rejects.toBeInstanceOf(PipelineError);
    await expect(pipeline.generate(request({ width: 128 }))).rejects.toMatchObject({
      code: 'pipeline_invalid_request',
    });
    await expect(
      pipeline.generate(request({ controls: [{ net: controlnet, hint, strength: 3 }] })),
    ).rejects.toBeInstanceOf(PipelineError);
  });
});
