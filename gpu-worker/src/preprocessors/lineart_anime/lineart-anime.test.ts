import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FixtureTensor,
  fixtureTensor,
  readFixtureTensors,
  writeSyntheticWeights,
} from '../../../test/fixture-tensors.ts';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import type { ModelEngine } from '../../engine/model-engine.ts';
import {
  detectLineartAnime,
  LINEART_ANIME_WEIGHTS,
  type LineartAnimeModel,
  lineartAnimePreprocessor,
  lineToMap,
  loadLineartAnime,
} from './index.ts';

const FIXTURES = 'preprocessors/lineart_anime';
/** Generator output (tanh) vs PyTorch: max abs difference / max abs value. */
const OUTPUT_TOLERANCE = 1e-4;

let tensors: Map<string, FixtureTensor>;
let dir: string;
let weightsPath: string;
/** Loaded once for both engines: regenerating and loading the 54M synthetic weights takes ~20 s here. */
let model: LineartAnimeModel;

function rgb(name: string) {
  const image = fixtureTensor(tensors, name);
  const [height, width] = image.shape as [number, number];
  return { width, height, channels: 3 as const, data: image.data as Uint8Array };
}

/** The reference output as the detector's `line` (float32 out * 127.5 + 127.5). */
function referenceLine(key: string): Float32Array {
  const out = fixtureTensor(tensors, `output_${key}`).data as Float32Array;
  return out.map((v) => Math.fround(Math.fround(v * 127.5) + 127.5));
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', log: () => {} });
  const io = await readFixtureTensors(fixturePath(`${FIXTURES}/lineart_anime.io.safetensors`));
  tensors = io.tensors;
  dir = await mkdtemp(join(tmpdir(), 'contour-lineart-anime-'));
  const overrides = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) {
    if (name.startsWith('override.'))
      overrides.set(name.slice('override.'.length), tensor.data as Float32Array);
  }
  weightsPath = await writeSyntheticWeights(
    fixturePath(`${FIXTURES}/netG.manifest.json`),
    Number(io.metadata.seed),
    dir,
    'netG.safetensors',
    overrides,
  );
  model = await loadLineartAnime({ [LINEART_ANIME_WEIGHTS]: weightsPath });
}, 120_000);

afterAll(async () => {
  model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/**
 * An engine whose runNetwork returns a case's reference network output (NHWC) and records the input it got, so
 * the preprocessor's own steps (resizes, normalisation, output scaling, inversion) are checked without running
 * the 54M-parameter network again.
 */
function replayEngine(key: string): { engine: ModelEngine; inputs: Float32Array[] } {
  const inputs: Float32Array[] = [];
  const output = fixtureTensor(tensors, `output_${key}`);
  const [, , h, w] = output.shape as [number, number, number, number];
  const engine = {
    async runNetwork(_net: unknown, xs: readonly tf.Tensor4D[]) {
      inputs.push(xs[0]!.dataSync() as Float32Array);
      return [tf.tensor4d(output.data as Float32Array, [1, h, w, 1])];
    },
  } as unknown as ModelEngine;
  return { engine, inputs };
}

describe('lineart_anime steps around the network', () => {
  it.each(['a', 'b'])(
    'case %s: resizes in, normalises, scales, resizes back and inverts exactly as the original',
    async (key) => {
      const image = rgb(`image_${key}`);
      const { engine, inputs } = replayEngine(key);
      const { map } = await lineartAnimePreprocessor.run({ engine, image, model, params: {} });
      // The network input: the INTER_CUBIC resize to 256-multiples (a copy for case a), / 127.5 - 1.
      const resized = tensors.has(`resized_${key}`) ? rgb(`resized_${key}`) : image;
      expect(inputs).toHaveLength(1);
      expect(inputs[0]!.length).toBe(resized.data.length);
      expect(inputs[0]!.every((v, i) => v === Math.fround(Math.fround(resized.data[i]! / 127.5) - 1))).toBe(
        true,
      );
      // The map: the detector's (INTER_CUBIC back for case b, clip, truncate), inverted as the app feeds it.
      const expected = fixtureTensor(tensors, `map_${key}`).data as Uint8Array;
      expect([map.width, map.height, map.channels]).toEqual([image.width, image.height, 3]);
      const mismatched = expected.filter(
        (v, p) => map.data[p * 3] !== 255 - v || map.data[p * 3 + 1] !== 255 - v,
      );
      expect(mismatched.length).toBe(0);
      expect(new Set(expected).size).toBeGreaterThan(100);
    },
  );

  it('lineToMap is the identity-size tail for case a', () => {
    const map = lineToMap({ data: referenceLine('a'), width: 256, height: 256 }, 256, 256);
    expect(Buffer.from(map).equals(fixtureTensor(tensors, 'map_a').data as Uint8Array)).toBe(true);
  });
});

describe.each(ENGINES)('lineart_anime on %s', (engineName) => {
  it('matches the original generator output and map (256 x 256 image: no resizing)', async () => {
    const engine = await testEngine(engineName);
    try {
      const image = rgb('image_a');
      // One network run (~15 s here): detectLineartAnime is what the preprocessor's run() returns the map of.
      const { line, map, control } = await detectLineartAnime(engine, model.network, image);
      const error = relativeError(line.data, referenceLine('a'));
      console.info(`lineart_anime ${engineName}: output relative error ${error.toExponential(2)}`);
      expect(error).toBeLessThan(OUTPUT_TOLERANCE);
      expect([map.width, map.height, map.channels]).toEqual([image.width, image.height, 3]);
      const expected = fixtureTensor(tensors, 'map_a').data;
      let off = 0;
      let maxDiff = 0;
      for (let p = 0; p < expected.length; p++) {
        const diff = Math.abs(map.data[p * 3]! - expected[p]!);
        if (diff) off++;
        maxDiff = Math.max(maxDiff, diff);
      }
      console.info(`lineart_anime ${engineName}: map ${off} pixels off by <= ${maxDiff}`);
      expect(control.data.every((v, i) => v === 255 - map.data[i]!)).toBe(true);
      // uint8 truncation of a float: outputs within ~1e-4 of an integer can land on either side.
      expect(maxDiff).toBeLessThanOrEqual(1);
      expect(off / expected.length).toBeLessThan(0.005);
    } finally {
      await engine.dispose();
    }
  });
});

describe('lineart_anime preprocessor', () => {
  it('is named lineart_anime and loads netG.pth', () => {
    expect(lineartAnimePreprocessor.name).toBe('lineart_anime');
    expect(lineartAnimePreprocessor.model?.files).toEqual([LINEART_ANIME_WEIGHTS]);
  });
});

describe('lineart_anime weights', () => {
  it('names the weight file when it is missing or of another network', async () => {
    await expect(loadLineartAnime({})).rejects.toThrow(LINEART_ANIME_WEIGHTS);
    await expect(loadLineartAnime({ [LINEART_ANIME_WEIGHTS]: join(dir, 'absent.pth') })).rejects.toThrow(
      /netG\.pth: cannot be read/,
    );
    const other = await writeSyntheticWeights(
      fixturePath('preprocessors/lineart/sk_model.manifest.json'),
      1,
      dir,
      'sk.safetensors',
    );
    await expect(loadLineartAnime({ [LINEART_ANIME_WEIGHTS]: other })).rejects.toThrow(
      /netG\.pth: does not fit the network .*missing: model\.model\.0\.weight/,
    );
  });
});
