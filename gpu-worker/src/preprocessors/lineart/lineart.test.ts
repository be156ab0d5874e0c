import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FixtureTensor,
  fixtureTensor,
  readFixtureTensors,
  writeSyntheticWeights,
} from '../../../test/fixture-tensors.ts';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import {
  invertMap,
  LINEART_COARSE_WEIGHTS,
  LINEART_WEIGHTS,
  type LineartModel,
  lineartCoarseModel,
  lineartCoarsePreprocessor,
  lineartModel,
  lineartOutput,
  lineartRealisticPreprocessor,
  lineToUint8,
} from './index.ts';

const FIXTURES = 'preprocessors/lineart';
/** Generator output (sigmoid) vs PyTorch: max abs difference / max abs value. */
const OUTPUT_TOLERANCE = 1e-4;

let tensors: Map<string, FixtureTensor>;
let metadata: Record<string, string>;
let dir: string;
const paths: Record<string, string> = {};

beforeAll(async () => {
  await initBackend({ force: 'wasm', log: () => {} });
  ({ tensors, metadata } = await readFixtureTensors(fixturePath(`${FIXTURES}/lineart.io.safetensors`)));
  dir = await mkdtemp(join(tmpdir(), 'contour-lineart-'));
  const manifest = fixturePath(`${FIXTURES}/sk_model.manifest.json`);
  paths[LINEART_WEIGHTS] = await writeSyntheticWeights(
    manifest,
    Number(metadata.seed_fine),
    dir,
    'fine.safetensors',
  );
  paths[LINEART_COARSE_WEIGHTS] = await writeSyntheticWeights(
    manifest,
    Number(metadata.seed_coarse),
    dir,
    'coarse.safetensors',
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const VARIANTS = [
  { key: 'fine', spec: lineartModel, preprocessor: lineartRealisticPreprocessor },
  { key: 'coarse', spec: lineartCoarseModel, preprocessor: lineartCoarsePreprocessor },
] as const;

describe('lineart post-processing', () => {
  it('turns the reference generator outputs into the reference maps exactly', () => {
    for (const key of ['fine', 'coarse']) {
      const line = fixtureTensor(tensors, `output_${key}`).data as Float32Array;
      const map = lineToUint8(line);
      expect(Buffer.from(map).equals(fixtureTensor(tensors, `map_${key}`).data as Uint8Array)).toBe(true);
      expect(new Set(map).size).toBeGreaterThan(100);
    }
  });
});

describe.each(ENGINES)('lineart on %s', (engineName) => {
  it.each(VARIANTS)('$preprocessor.name matches the original generator output and map', async (variant) => {
    const engine = await testEngine(engineName);
    const model: LineartModel = await variant.spec.load(paths);
    try {
      const image = fixtureTensor(tensors, 'image');
      const [height, width] = image.shape as [number, number];
      const rgb = { width, height, channels: 3 as const, data: image.data as Uint8Array };
      const line = await lineartOutput(engine, model.network, rgb);
      const error = relativeError(line.data, fixtureTensor(tensors, `output_${variant.key}`).data);
      console.info(
        `${variant.preprocessor.name} ${engineName}: output relative error ${error.toExponential(2)}`,
      );
      expect(error).toBeLessThan(OUTPUT_TOLERANCE);

      const { map } = await variant.preprocessor.run({ engine, image: rgb, model, params: {} });
      expect([map.width, map.height, map.channels]).toEqual([width, height, 3]);
      // The preprocessor returns the control: the detector's map inverted (what the app feeds ControlNet).
      const expected = invertMap(fixtureTensor(tensors, `map_${variant.key}`).data as Uint8Array);
      let off = 0;
      let maxDiff = 0;
      for (let p = 0; p < expected.length; p++) {
        const diff = Math.abs(map.data[p * 3]! - expected[p]!);
        expect(map.data[p * 3 + 1]).toBe(map.data[p * 3]);
        if (diff) off++;
        maxDiff = Math.max(maxDiff, diff);
      }
      console.info(`${variant.preprocessor.name} ${engineName}: map ${off} pixels off by <= ${maxDiff}`);
      // uint8 truncation of a float: outputs within ~1e-6 of a k/255 step can land on either side.
      expect(maxDiff).toBeLessThanOrEqual(1);
      expect(off / expected.length).toBeLessThan(0.005);
    } finally {
      model.dispose();
      await engine.dispose();
    }
  });
});

describe('lineart weights', () => {
  it('names the weight file when it is missing or unreadable', async () => {
    await expect(lineartModel.load({})).rejects.toThrow(LINEART_WEIGHTS);
    await expect(
      lineartCoarseModel.load({ [LINEART_COARSE_WEIGHTS]: join(dir, 'absent.pth') }),
    ).rejects.toThrow(/sk_model2\.pth: cannot be read/);
    // The coarse file under the realistic name still fits (same architecture); another layout does not.
    await expect(
      lineartModel.load({
        [LINEART_WEIGHTS]: await writeSyntheticWeights(
          fixturePath('preprocessors/mlsd/mlsd_large_512_fp32.manifest.json'),
          1,
          dir,
          'mlsd.safetensors',
        ),
      }),
    ).rejects.toThrow(/sk_model\.pth: does not fit the network .*missing: model0\.1\.weight/);
  });
});
