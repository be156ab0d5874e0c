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
  nchwToNhwc,
  nhwcToNchwData,
  relativeError,
  testEngine,
} from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { tfOps } from '../../engine/tf-ops.ts';
import { torchToTfLayout } from '../../models/params.ts';
import { encodeSafetensors, SafetensorsFile } from '../../weights/safetensors.ts';
import { imageToFloat } from '../hed/edge.ts';
import { AnnotatorWeightError } from '../hed/weights.ts';
import { type ManifestEntry, syntheticTensor } from '../synthetic-weights.ts';
import {
  PIDINET_FILE,
  type PidinetModel,
  pidinetMap,
  pidinetModelSpec,
  pidinetPreprocessors,
} from './index.ts';
import { convertPdc } from './network.ts';

const FIXTURES = 'preprocessors/pidinet';

describe('softedge_pidinet / softedge_pidisafe: ControlNet 1.1 PidiNetDetector on synthetic table5_pidinet.pth weights', async () => {
  const io = await SafetensorsFile.open(fixturePath(`${FIXTURES}/pidinet.io.safetensors`));
  const [height, width] = io.info('image').shape as [number, number];
  const image: Image8<3> = {
    width,
    height,
    channels: 3,
    data: Uint8Array.from(await io.readFloat32('image')),
  };
  let dir: string;
  let weights: string;
  let model: PidinetModel;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-pidinet-'));
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
    weights = join(dir, 'table5_pidinet.safetensors');
    await writeFile(weights, encodeSafetensors(tensors));
    model = await pidinetModelSpec.load({ [PIDINET_FILE]: weights });
  });

  afterAll(async () => {
    model?.dispose();
    await io.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('declares every table5_pidinet.pth tensor (83, 710,149 floats; the model counts raw + converted kernels)', () => {
    expect(model.network.params.specs.size).toBe(83);
    expect(model.bytes).toBe(710_149 * 4 * 2);
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

      it('network: the edge map and the four side outputs match the original (relative error < 3e-4)', async () => {
        const input = tf.tensor4d(imageToFloat(image, [2, 1, 0], 255), [1, height, width, 3]);
        const outputs = await engine.runNetwork(model.network, [input]);
        try {
          const names = ['edge', 'side1', 'side2', 'side3', 'side4'];
          for (const [i, name] of names.entries()) {
            const expected = await io.readFloat32(name);
            const actual = outputs[i]!.dataSync() as Float32Array;
            expect(actual.length, name).toBe(expected.length);
            expect(relativeError(actual, expected), name).toBeLessThan(3e-4);
          }
        } finally {
          tf.dispose([input, ...outputs]);
        }
      });

      // The map is uint8(255 * edge): an edge error of ~1e-4 flips the truncation of a few pixels by 1, and a
      // pixel within ~1e-4 of safe_step's thresholds (1/3, 2/3) would change level (127 or 128).
      for (const [definition, reference, maxDiff] of [
        [pidinetPreprocessors[0]!, 'map', 1],
        [pidinetPreprocessors[1]!, 'map_safe', 128],
      ] as const) {
        it(`${definition.name}: the map matches the original's (HWC3; < 1% of pixels off, by at most ${maxDiff})`, async () => {
          const { map } = await definition.run({ engine, image, params: {}, model });
          expect([map.width, map.height, map.channels]).toEqual([width, height, 3]);
          const diff = mapDiff(map.data, grayToHwc3(await io.readFloat32(reference)));
          expect(diff.max).toBeLessThanOrEqual(maxDiff);
          expect(diff.count / map.data.length).toBeLessThan(0.01);
        });
      }
    });
  }

  it('each pixel-difference conv converted to a vanilla kernel equals the original createConvFunc (dense, depthwise)', async () => {
    for (const pdc of ['cd', 'ad', 'rd'] as const) {
      for (const kind of ['dense', 'depthwise']) {
        const name = `pdc_${pdc}_${kind}`;
        const wShape = io.info(`${name}.w`).shape;
        const raw = torchToTfLayout(await io.readFloat32(`${name}.w`), wShape);
        const x = nchwToNhwc(await io.readFloat32(`${name}.x`), io.info(`${name}.x`).shape);
        const kernel = convertPdc(raw, pdc);
        const groups = kind === 'dense' ? 1 : 4;
        const y = tfOps.conv(x, kernel, undefined, { pad: pdc === 'rd' ? 2 : 1, groups });
        const actual = nhwcToNchwData(y as tf.Tensor4D);
        tf.dispose([raw, x, kernel, y]);
        expect(relativeError(actual, await io.readFloat32(`${name}.y`)), name).toBeLessThan(1e-6);
      }
    }
  });

  it('post-processing from the reference edge map reproduces both maps exactly', async () => {
    const logits = await io.readFloat32('edge');
    for (const [safe, reference] of [
      [false, 'map'],
      [true, 'map_safe'],
    ] as const) {
      const map = pidinetMap(logits, width, height, safe);
      expect(mapDiff(map.data, grayToHwc3(await io.readFloat32(reference)))).toEqual({ count: 0, max: 0 });
    }
  });

  it('a missing or wrong weight file is an error naming table5_pidinet.pth', async () => {
    const missing = pidinetModelSpec.load({ [PIDINET_FILE]: join(dir, 'nowhere.pth') });
    await expect(missing).rejects.toThrow(AnnotatorWeightError);
    await expect(missing).rejects.toThrow(/table5_pidinet\.pth.*nowhere\.pth/);
    await expect(pidinetModelSpec.load({})).rejects.toThrow(/table5_pidinet\.pth/);
    const wrong = join(dir, 'wrong.safetensors');
    await writeFile(
      wrong,
      encodeSafetensors({
        'module.init_block.weight': { dtype: 'F32', shape: [60, 3, 5, 5], data: new Float32Array(4500) },
      }),
    );
    await expect(pidinetModelSpec.load({ [PIDINET_FILE]: wrong })).rejects.toThrow(
      /table5_pidinet\.pth .*missing: block1_1\.conv1\.weight.*mis-shaped: module\.init_block\.weight/,
    );
  });
});
