/**
 * Full-size SD1.5 + ControlNet through the worker's real loaders, on synthetic weights in the original
 * `control_sd15_canny` single-file layout (written by synthetic-weights.ts to a folder outside git):
 * load time and RSS per component, then full-width numerical parity with the original ControlNet code
 * (13 residuals, eps with and without control, VAE decode at an 8x8 latent; reference in
 * test/fixtures/fullsize, made as its README says) on tfjs (cpu backend) and ONNX Runtime (CPU, fp32; BENCH_ENGINES=
 * tfjs|onnxruntime picks one). Exits 1 when parity is outside 1e-3 relative.
 *
 *   CONTOUR_BENCH_FULLSIZE=1 npx tsx gpu-worker/bench/fullsize.bench.ts
 *
 * Env: CONTOUR_SYNTHETIC_DIR (default <tmp>/contour-synthetic; about 6 GB). Without CONTOUR_BENCH_FULLSIZE=1 it
 * only says how to run it, so `npm run bench` stays short.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { type ModelEngine, TfModelEngine } from '../src/engine/model-engine.ts';
import { OrtModelEngine } from '../src/engine/onnx/ort-engine.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../src/weights/checkpoint.ts';
import { SafetensorsFile } from '../src/weights/safetensors.ts';
import { fixturePath, nhwcToNchwData, readNhwc, relativeError } from '../test/parity-helpers.ts';
import { writeSyntheticWeights } from './synthetic-weights.ts';

const TOLERANCE = 1e-3;
const dir = process.env.CONTOUR_SYNTHETIC_DIR ?? join(tmpdir(), 'contour-synthetic');

if (process.env.CONTOUR_BENCH_FULLSIZE !== '1') {
  console.log(
    `skipped: set CONTOUR_BENCH_FULLSIZE=1 to load full-size SD1.5 + ControlNet (writes ~6 GB of synthetic weights to ${dir}, takes minutes)`,
  );
  process.exit(0);
}

const weights = join(dir, 'control_sd15_canny.safetensors');
if (!existsSync(weights)) await writeSyntheticWeights(dir, ['control_sd15_canny']);

// tfjs's plain CPU backend keeps tensors in JS typed arrays, so it can hold all 1.2 G parameters (the wasm
// backend's 4 GiB heap cannot).
await initBackend({ force: 'cpu', log: () => {} });
const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
async function timed<T>(label: string, load: () => Promise<T>): Promise<T> {
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const value = await load();
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `load component=${label} seconds=${seconds.toFixed(1)} rss_delta_gib=${gib(process.memoryUsage().rss - before)} rss_gib=${gib(process.memoryUsage().rss)}`,
  );
  return value;
}
const controlnet = await timed('controlnet', () => loadControlNet(weights));
const unet = await timed('unet', () => loadUNet(weights));
const decoder = await timed('vae-decoder', () => loadVaeDecoder(weights));

const io = await SafetensorsFile.open(fixturePath('fullsize/fullsize.io.safetensors'));
const x = await readNhwc(io, 'in.x');
const hint = await readNhwc(io, 'in.hint');
const context = tf.tensor3d(
  await io.readFloat32('in.context'),
  io.info('in.context').shape as [number, number, number],
);
const timesteps = [...(await io.readFloat32('in.t'))];
const z = await readNhwc(io, 'in.z');

const engines: { name: string; make: () => Promise<ModelEngine> }[] = [
  { name: 'engine=tfjs device=cpu precision=fp32', make: async () => new TfModelEngine() },
  {
    name: 'engine=onnxruntime device=cpu precision=fp32',
    make: async () =>
      new OrtModelEngine(await import('onnxruntime-node'), {
        device: 'cpu',
        precision: 'fp32',
        cacheDir: join(dir, 'onnx-cache'),
        log: (line) => console.log(`  ${line}`),
      }),
  },
];
const only = process.env['BENCH_ENGINES']?.split(',');
let failed = false;
for (const { name, make } of engines) {
  if (only && !only.some((e) => name.includes(`engine=${e} `))) continue;
  const engine = await make();
  let worst = 0;
  const report = async (key: string, actual: tf.Tensor4D) => {
    const error = relativeError(nhwcToNchwData(actual), await io.readFloat32(key));
    worst = Math.max(worst, error);
    console.log(`parity ${key} rel_error=${error.toExponential(2)}`);
  };
  let started = performance.now();
  const encoded = await engine.encodeHint(controlnet, hint);
  const residuals = await engine.controlNet(controlnet, x, timesteps, context, encoded);
  const controlled = await engine.unet(unet, x, timesteps, context, residuals);
  console.log(
    `pass ${name} controlnet+unet batch=2 latent=8x8 seconds=${((performance.now() - started) / 1000).toFixed(1)} rss_gib=${gib(process.memoryUsage().rss)}`,
  );
  for (let i = 0; i < residuals.length; i++) await report(`out.control.${i}`, residuals[i]!);
  await report('out.eps_controlled', controlled);
  await report('out.eps_plain', await engine.unet(unet, x, timesteps, context));
  started = performance.now();
  const decoded = await engine.decodeLatents(decoder, z);
  console.log(
    `pass ${name} vae-decoder latent=8x8 seconds=${((performance.now() - started) / 1000).toFixed(1)}`,
  );
  await report('out.decoded', decoded);
  console.log(`fullsize ${name} worst_rel_error=${worst.toExponential(2)} tolerance=${TOLERANCE}`);
  failed ||= !(worst <= TOLERANCE);
  await engine.dispose();
}
process.exit(failed ? 1 : 0);
