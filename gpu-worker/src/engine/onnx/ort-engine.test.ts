import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nhwcToNchwData, openReference, readNhwc, relativeError } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import { UNetModel } from '../../models/unet.ts';
import { originalLayout } from '../../weights/keymap.ts';
import { loadParams } from '../../weights/load.ts';
import type { SafetensorsFile } from '../../weights/safetensors.ts';
import { type OrtEngineOptions, OrtModelEngine } from './ort-engine.ts';

describe('ONNX Runtime engine: graph cache, external data, fp16 (refA UNet)', () => {
  let dir: string;
  let io: SafetensorsFile;
  let unet: UNetModel;
  let x: tf.Tensor4D;
  let context: tf.Tensor3D;
  let t: number[];

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-ort-engine-'));
    const ref = await openReference('refA');
    io = ref.io;
    unet = new UNetModel(ref.config.unet);
    await loadParams(unet.params, ref.weights, originalLayout('unet'));
    await ref.weights.close();
    x = await readNhwc(io, 'in.x');
    context = tf.tensor3d(
      await io.readFloat32('in.context'),
      io.info('in.context').shape as [number, number, number],
    );
    t = [...(await io.readFloat32('in.t'))];
  });

  afterAll(async () => {
    tf.dispose([x, context]);
    unet.dispose();
    await io.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** eps_plain from a fresh engine with these options, and that engine's build statistics. */
  async function run(options: Partial<OrtEngineOptions> & { cacheDir: string }) {
    const engine = new OrtModelEngine(ort, { device: 'cpu', precision: 'fp32', ...options });
    const eps = await engine.unet(unet, x, t, context);
    const data = nhwcToNchwData(eps);
    eps.dispose();
    await engine.dispose();
    return { data, stats: engine.stats };
  }

  it('caches built graphs on disk keyed by the weights: a restart loads instead of rebuilding', async () => {
    const cacheDir = join(dir, 'cache');
    const first = await run({ cacheDir });
    expect(first.stats).toEqual({ built: 1, loadedFromCache: 0 });
    const second = await run({ cacheDir });
    expect(second.stats).toEqual({ built: 0, loadedFromCache: 1 });
    expect(second.data).toEqual(first.data);
    expect(relativeError(first.data, await io.readFloat32('out.eps_plain'))).toBeLessThan(1e-4);
    // Other weights are another graph.
    const bias = unet.params.get('out.2.bias');
    unet.params.setTensor('out.2.bias', bias.add(1));
    const changed = await run({ cacheDir });
    expect(changed.stats.built).toBe(1);
    expect(changed.data[0]! - first.data[0]!).toBeCloseTo(1, 4);
    unet.params.setTensor('out.2.bias', unet.params.get('out.2.bias').sub(1));
  });

  it('writes initializers as ONNX external data above the size threshold, with the same results', async () => {
    const cacheDir = join(dir, 'external');
    const inline = await run({ cacheDir: join(dir, 'inline') });
    const external = await run({ cacheDir, externalThreshold: 1024 });
    const files = await readdir(cacheDir);
    expect(files.some((f) => f.endsWith('.onnx.data'))).toBe(true);
    expect(external.data).toEqual(inline.data);
  });

  // Tolerance: fp16 rounding of weights (and, for fp16, of activations) on this tiny UNet stays within 2e-3 of
  // the fp32 graph relative to the output's scale; fp32 itself is within 1e-6.
  it.each(['fp16-weights', 'fp16'] as const)(
    '%s graphs match fp32 within 2e-3 on the CPU provider',
    async (precision) => {
      const fp32 = await run({ cacheDir: join(dir, 'p32') });
      const half = await run({ cacheDir: join(dir, precision), precision });
      const error = relativeError(half.data, fp32.data);
      expect(error).toBeLessThan(2e-3);
      expect(error).toBeGreaterThan(1e-6);
    },
  );
});
