import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENGINES,
  fixturePath,
  nhwcToNchwData,
  relativeError,
  testEngine,
} from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import { openWeightFile } from '../../weights/open.ts';
import {
  encodeSafetensors,
  SafetensorsFile,
  type SafetensorsTensorInput,
} from '../../weights/safetensors.ts';
import { isIntegerDtype, type ManifestEntry, syntheticTensor } from '../synthetic-weights.ts';
import { NORMALBAE_FILE, type NormalBaeModel, normalBae, normalBaeModelSpec, runNormalBae } from './index.ts';

const FIXTURES = 'preprocessors/normalbae';
/** The seed make_reference.py filled the checkpoint with. */
const SEED = 16;
/** make_reference.py halves each block's last BatchNorm scale so the synthetic network stays well conditioned. */
const DAMPED = /\.blocks\.\d+\.\d+\.bn3\.weight$|\.blocks\.0\.\d+\.bn2\.weight$/;

/** The synthetic value of one checkpoint tensor, as make_reference.py wrote it. */
function checkpointTensor(entry: ManifestEntry): Float32Array {
  const data = syntheticTensor(entry, SEED);
  if (DAMPED.test(entry.name)) for (let i = 0; i < data.length; i++) data[i]! *= 0.5;
  return data;
}

/** Channels [from, to) of NCHW data with batch 1. */
function channels(
  data: Float32Array,
  c: number,
  h: number,
  w: number,
  from: number,
  to: number,
): Float32Array {
  return data.slice(from * h * w, Math.min(to, c) * h * w);
}

describe('normal_bae (NormalBaeDetector, EfficientNet-B5 + uncertainty-guided refinement, test mode)', () => {
  let dir: string;
  let weightsPath: string;
  let io: SafetensorsFile;
  let model: NormalBaeModel;
  let image: { width: number; height: number; channels: 3; data: Uint8Array };

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-normalbae-'));
    // The synthetic checkpoint in scannet.pt's key layout ('module.' keys, num_batches_tracked counters included).
    const manifest = JSON.parse(
      await readFile(fixturePath(`${FIXTURES}/scannet.manifest.json`), 'utf8'),
    ) as ManifestEntry[];
    const tensors: Record<string, SafetensorsTensorInput> = {};
    for (const entry of manifest) {
      tensors[entry.name] = isIntegerDtype(entry.dtype)
        ? { dtype: 'I32', shape: entry.shape, data: new Int32Array(entry.shape.reduce((a, b) => a * b, 1)) }
        : { dtype: 'F32', shape: entry.shape, data: checkpointTensor(entry) };
    }
    weightsPath = join(dir, 'scannet.safetensors');
    await writeFile(weightsPath, encodeSafetensors(tensors));
    model = await normalBaeModelSpec.load({ [NORMALBAE_FILE]: weightsPath });
    io = await SafetensorsFile.open(fixturePath(`${FIXTURES}/normalbae.io.safetensors`));
    const [height, width] = io.info('image').shape as [number, number];
    image = { width, height, channels: 3, data: Uint8Array.from(await io.readInt32('image')) };
  }, 120_000);

  afterAll(async () => {
    model?.dispose();
    await io?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loads all 72.6M parameters of the checkpoint layout', () => {
    expect(model.network.params.complete).toBe(true);
    expect(model.bytes).toBeGreaterThan(72_000_000 * 4);
  });

  for (const name of ENGINES) {
    it(`matches the original detector on ${name}: raw outputs and the uint8 map`, async () => {
      const engine = await testEngine(name);
      try {
        const { res8, res1 } = await runNormalBae(engine, model.network, image);
        const got8 = nhwcToNchwData(res8 as tf.Tensor4D);
        const got1 = nhwcToNchwData(res1 as tf.Tensor4D);
        tf.dispose([res8, res1]);
        for (const [key, got] of [
          ['out_res8', got8],
          ['out_res1', got1],
        ] as const) {
          const [, c, h, w] = io.info(key).shape as [number, number, number, number];
          const want = await io.readFloat32(key);
          // Normals (unit vectors) and kappa (0.01 to ~2000 here) compared apart, each against its own scale.
          const normals = relativeError(channels(got, c, h, w, 0, 3), channels(want, c, h, w, 0, 3));
          const kappa = relativeError(channels(got, c, h, w, 3, 4), channels(want, c, h, w, 3, 4));
          expect(normals, `${key} normals`).toBeLessThan(3e-5);
          expect(kappa, `${key} kappa`).toBeLessThan(3e-5);
        }

        const { map } = await normalBae.run({ engine, image, params: {}, model });
        const want = await io.readInt32('map');
        expect([map.width, map.height, map.channels]).toEqual([image.width, image.height, 3]);
        let off = 0;
        let worst = 0;
        for (let i = 0; i < want.length; i++) {
          const diff = Math.abs(map.data[i]! - want[i]!);
          if (diff) off++;
          worst = Math.max(worst, diff);
        }
        // Truncation to uint8 turns a ~1e-6 difference into 1 where a value sits on an integer boundary.
        expect(worst).toBeLessThanOrEqual(1);
        expect(off / want.length).toBeLessThan(0.005);
      } finally {
        await engine.dispose();
      }
    }, 120_000);
  }

  it('reads scannet.pt as saved: {model: state_dict with module. keys, iter}', async () => {
    const file = await openWeightFile(fixturePath(`${FIXTURES}/container.pt`));
    try {
      const prefix = 'module.decoder.up4._net.1.';
      expect([...file.tensors.keys()].sort()).toEqual(
        ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight'].map((k) => prefix + k),
      );
      const entry = { name: `${prefix}running_var`, shape: [128], dtype: 'float32' };
      expect(await file.readFloat32(entry.name)).toEqual(syntheticTensor(entry, SEED));
    } finally {
      await file.close();
    }
  });

  it('names scannet.pt when the weight file is missing, unreadable or another checkpoint', async () => {
    await expect(normalBaeModelSpec.load({})).rejects.toThrow(/needs the weight file scannet\.pt/);
    await expect(normalBaeModelSpec.load({ [NORMALBAE_FILE]: join(dir, 'nowhere.pt') })).rejects.toThrow(
      /cannot read scannet\.pt \(.*nowhere\.pt\)/,
    );
    await expect(
      normalBaeModelSpec.load({ [NORMALBAE_FILE]: fixturePath(`${FIXTURES}/container.pt`) }),
    ).rejects.toThrow(/container\.pt is not the normal_bae checkpoint scannet\.pt: \d+ missing/);
  });
});
