import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image8 } from '@contour/shared/preprocess';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ENGINES,
  fixturePath,
  grayToHwc3,
  mapDiff,
  relativeError,
  testEngine,
} from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { encodeSafetensors, SafetensorsFile } from '../../weights/safetensors.ts';
import { type ManifestEntry, syntheticTensor } from '../synthetic-weights.ts';
import { HED_FILE, type HedModel, hedMap, hedModelSpec, hedPreprocessors } from './index.ts';
import { AnnotatorWeightError } from './weights.ts';

const FIXTURES = 'preprocessors/hed';

describe('softedge_hed / softedge_hedsafe: ControlNet 1.1 HEDdetector on synthetic ControlNetHED.pth weights', async () => {
  const io = await SafetensorsFile.open(fixturePath(`${FIXTURES}/hed.io.safetensors`));
  const [height, width] = io.info('image').shape as [number, number];
  const image: Image8<3> = {
    width,
    height,
    channels: 3,
    data: Uint8Array.from(await io.readFloat32('image')),
  };
  let dir: string;
  let weights: string;
  let model: HedModel;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-hed-'));
    // The checkpoint's own keys and shapes, filled with the seeded values the reference ran on.
    const manifest = JSON.parse(
      await readFile(fixturePath(`${FIXTURES}/manifest.json`), 'utf8'),
    ) as ManifestEntry[];
    const seed = Number(io.metadata['seed']);
    const tensors = Object.fromEntries(
      manifest.map((e) => [
        e.name,
        { dtype: 'F32' as const, shape: e.shape, data: syntheticTensor(e, seed) },
      ]),
    );
    weights = join(dir, 'ControlNetHED.safetensors');
    await writeFile(weights, encodeSafetensors(tensors));
    model = await hedModelSpec.load({ [HED_FILE]: weights });
  });

  afterAll(async () => {
    model?.dispose();
    await io.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('declares every ControlNetHED.pth tensor', () => {
    expect(model.bytes).toBe(14_716_168 * 4);
  });

  for (const engineName of ENGINES) {
    describe(engineName, () => {
      let engine: ModelEngine;
      beforeAll(async () => {
        engine = await testEngine(engineName);
      });
      afterAll(async () => {
        await engine.dispose();
      });

      it('network: the five side outputs and the fused logits match the original (relative error < 3e-5)', async () => {
        const input = tf.tensor4d(Float32Array.from(image.data), [1, height, width, 3]);
        const outputs = await engine.runNetwork(model.network, [input]);
        try {
          const names = ['fused', 'projection1', 'projection2', 'projection3', 'projection4', 'projection5'];
          for (const [i, name] of names.entries()) {
            const expected = await io.readFloat32(name);
            const actual = outputs[i]!.dataSync() as Float32Array;
            expect(actual.length, name).toBe(expected.length);
            expect(relativeError(actual, expected), name).toBeLessThan(3e-5);
          }
        } finally {
          tf.dispose([input, ...outputs]);
        }
      });

      for (const [definition, reference] of [
        [hedPreprocessors[0]!, 'map'],
        [hedPreprocessors[1]!, 'map_safe'],
      ] as const) {
        it(`${definition.name}: the map equals the original's (HWC3)`, async () => {
          const { map } = await definition.run({ engine, image, params: {}, model });
          expect([map.width, map.height, map.channels]).toEqual([width, height, 3]);
          const diff = mapDiff(map.data, grayToHwc3(await io.readFloat32(reference)));
          expect(diff).toEqual({ count: 0, max: 0 });
        });
      }
    });
  }

  it('post-processing from the reference logits reproduces both maps exactly', async () => {
    const logits = await io.readFloat32('fused');
    for (const [safe, reference] of [
      [false, 'map'],
      [true, 'map_safe'],
    ] as const) {
      const map = hedMap(logits, width, height, safe);
      expect(mapDiff(map.data, grayToHwc3(await io.readFloat32(reference)))).toEqual({ count: 0, max: 0 });
    }
  });

  it('loads float16-stored weights too (as torch load_state_dict widens them into the float32 model)', async () => {
    const manifest = JSON.parse(
      await readFile(fixturePath(`${FIXTURES}/manifest.json`), 'utf8'),
    ) as ManifestEntry[];
    const entry = manifest.find((e) => e.name === 'block5.convs.2.weight')!;
    const values = syntheticTensor(entry, 1);
    const half = join(dir, 'half.safetensors');
    const tensors = Object.fromEntries(
      manifest.map((e) => [
        e.name,
        {
          dtype: 'F16' as const,
          shape: e.shape,
          data: e === entry ? values : new Float32Array(e.shape.reduce((a, b) => a * b, 1)),
        },
      ]),
    );
    await writeFile(half, encodeSafetensors(tensors));
    const loaded = await hedModelSpec.load({ [HED_FILE]: half });
    try {
      // HWIO [3, 3, 512, 512]: element (0, 0, 0, 0) is torch's [0, 0, 0, 0], the first value.
      const first = loaded.network.params.get(entry.name).dataSync()[0]!;
      expect(first).not.toBe(values[0]);
      expect(Math.abs(first - values[0]!)).toBeLessThan(Math.abs(values[0]!) * 1e-3);
    } finally {
      loaded.dispose();
    }
  });

  it('a missing or wrong weight file is an error naming ControlNetHED.pth', async () => {
    const missing = hedModelSpec.load({ [HED_FILE]: join(dir, 'nowhere.pth') });
    await expect(missing).rejects.toThrow(AnnotatorWeightError);
    await expect(missing).rejects.toThrow(/ControlNetHED\.pth.*nowhere\.pth/);
    await expect(hedModelSpec.load({})).rejects.toThrow(/ControlNetHED\.pth/);
    const wrong = join(dir, 'wrong.safetensors');
    await writeFile(
      wrong,
      encodeSafetensors({ norm: { dtype: 'F32', shape: [3], data: new Float32Array(3) } }),
    );
    await expect(hedModelSpec.load({ [HED_FILE]: wrong })).rejects.toThrow(
      /ControlNetHED\.pth .*missing: block1\.convs\.0\.weight.*mis-shaped: norm/,
    );
  });
});
