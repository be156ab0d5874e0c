import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import { encodeSafetensors, SafetensorsFile } from '../../weights/safetensors.ts';
import { writeSyntheticCheckpoint } from '../synthetic-annotators.ts';
import type { ManifestEntry } from '../synthetic-weights.ts';
import { depthToMap, midasInput } from './depth-map.ts';
import { resizePosEmbed, samePad } from './dpt-hybrid.ts';
import {
  DPT_HYBRID_FILE,
  depthMidas,
  depthMidasSmall,
  dptHybridSpec,
  MIDAS_SMALL_FILE,
  type MidasModel,
  midasSmallSpec,
} from './index.ts';

const dir = await mkdtemp(join(tmpdir(), 'contour-midas-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Writes the seeded synthetic weights of a checkpoint manifest as a .safetensors file. */
async function writeSyntheticWeights(manifestFile: string, seed: number, path: string): Promise<void> {
  const manifest = JSON.parse(await readFile(fixturePath(manifestFile), 'utf8')) as ManifestEntry[];
  writeSyntheticCheckpoint(manifest, seed, path);
}

/** The reference tensors of `<name>.io.safetensors`. */
async function readIo(name: string) {
  const io = await SafetensorsFile.open(fixturePath(`preprocessors/midas/${name}.io.safetensors`));
  try {
    const image = io.info('image').shape as [number, number, number];
    return {
      seed: Number(io.metadata.seed),
      image: {
        height: image[0],
        width: image[1],
        channels: 3 as const,
        data: Uint8Array.from(await io.readFloat32('image')),
      },
      depth: await io.readFloat32('depth'),
      map: Uint8Array.from(await io.readFloat32('map')),
    };
  } finally {
    await io.close();
  }
}

/** Pixels (of the single-channel map) whose value differs, and the largest difference. */
function mapDiff(actual: Uint8Array, expected: Uint8Array): { count: number; max: number } {
  let count = 0;
  let max = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[3 * i]! - expected[i]!);
    if (d > 0) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', log: () => {} });
});

describe('MidasDetector post-processing', () => {
  it('normalises (x - min) / max to uint8 by truncation, HWC3, and maps a constant prediction to zeros', () => {
    const map = depthToMap(new Float32Array([2, 4, 3, 2.5]), 2, 2);
    // (x - 2) / 2 * 255 -> 0, 255, 127.5, 63.75 -> truncated.
    expect(Array.from(map.data)).toEqual([0, 0, 0, 255, 255, 255, 127, 127, 127, 63, 63, 63]);
    expect(Array.from(depthToMap(new Float32Array([5, 5]), 2, 1).data)).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('scales the input as img / 127.5 - 1 in float32', () => {
    const x = midasInput({ width: 1, height: 1, channels: 3, data: new Uint8Array([0, 128, 255]) });
    expect(Array.from(x)).toEqual([-1, Math.fround(Math.fround(128 / 127.5) - 1), 1]);
  });
});

describe('timm pad_same', () => {
  it('pads stride-2 windows asymmetrically (smaller half first) and stride-1 windows symmetrically', () => {
    // max((ceil(i / s) - 1) * s + k - i, 0), split as (total // 2, total - total // 2).
    expect(samePad(64, 7, 2)).toEqual([2, 3]);
    expect(samePad(32, 3, 2)).toEqual([0, 1]);
    expect(samePad(33, 3, 2)).toEqual([1, 1]);
    expect(samePad(16, 1, 2)).toEqual([0, 0]);
    expect(samePad(16, 5, 1)).toEqual([2, 2]);
  });
});

describe("vit.py's _resize_pos_embed", () => {
  it('matches the original on a dim-3 embedding, grid 24x24 up to 28x30 and down to 4x6', async () => {
    const io = await SafetensorsFile.open(fixturePath('preprocessors/midas/pos_embed_resize.io.safetensors'));
    try {
      const pos = await io.readFloat32('pos');
      for (const [name, gh, gw] of [
        ['up_28x30', 28, 30],
        ['down_4x6', 4, 6],
      ] as const) {
        expect(relativeError(resizePosEmbed(pos, gh, gw, 3), await io.readFloat32(name))).toBeLessThan(1e-6);
      }
    } finally {
      await io.close();
    }
  });
});

const MODELS = [
  { definition: depthMidas, reference: 'dpt_hybrid', spec: dptHybridSpec, file: DPT_HYBRID_FILE },
  { definition: depthMidasSmall, reference: 'midas_v21_small', spec: midasSmallSpec, file: MIDAS_SMALL_FILE },
] as const;

for (const { definition, reference, spec, file } of MODELS) {
  const preprocessor = definition.name;
  describe(`${preprocessor} (${reference}) matches ControlNet 1.1 MidasDetector on synthetic weights`, async () => {
    const ref = await readIo(reference);
    let model: MidasModel;

    beforeAll(async () => {
      const path = join(dir, file.replace(/\.pt$/, '.safetensors'));
      await writeSyntheticWeights(`preprocessors/midas/${reference}.manifest.json`, ref.seed, path);
      model = await spec.load({ [file]: path });
      await rm(path);
    }, 120_000);
    afterAll(() => model?.dispose());

    it('the detector post-processing of the reference prediction gives the reference map exactly', () => {
      const map = depthToMap(ref.depth, ref.image.width, ref.image.height);
      expect(mapDiff(map.data, ref.map)).toEqual({ count: 0, max: 0 });
    });

    for (const engineName of ENGINES) {
      it(`${engineName}: raw prediction within 1e-4 relative, map within 1 level`, async () => {
        const engine = await testEngine(engineName);
        try {
          const depth = await model.predict(engine, ref.image);
          const error = relativeError(depth, ref.depth);
          const { map } = await definition.run({ engine, image: ref.image, params: {}, model });
          const diff = mapDiff(map.data, ref.map);
          console.info(`${preprocessor} ${engineName}: relative error ${error.toExponential(2)}, map`, diff);
          expect(error).toBeLessThan(1e-4);
          // A ~1e-5 relative difference moves a value across an integer step of *255 on a few pixels only.
          expect(diff.max).toBeLessThanOrEqual(1);
          expect(diff.count).toBeLessThan(0.005 * ref.map.length);
        } finally {
          await engine.dispose();
        }
      }, 180_000);
    }

    it('refuses a missing or wrong weight file with an error naming it, holding no tensors', async () => {
      const tensors = tf.memory().numTensors;
      const missing = join(dir, 'nowhere', file);
      await expect(spec.load({ [file]: missing })).rejects.toThrow(missing);
      const wrong = join(dir, 'wrong.safetensors');
      await writeFile(
        wrong,
        encodeSafetensors({
          'scratch.layer1_rn.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
        }),
      );
      await expect(spec.load({ [file]: wrong })).rejects.toThrow(
        new RegExp(`${wrong}.*missing: pretrained\\.`),
      );
      expect(tf.memory().numTensors).toBe(tensors);
    });
  });
}
