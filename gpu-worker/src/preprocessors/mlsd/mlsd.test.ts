import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FixtureTensor,
  fixtureTensor,
  nchwToNhwcData,
  readFixtureTensors,
  writeSyntheticWeights,
} from '../../../test/fixture-tensors.ts';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import { encodeSafetensors } from '../../weights/safetensors.ts';
import { decodeLines, drawSegments, type Segment } from './decode.ts';
import { detectLines, loadMlsd, MLSD_WEIGHTS, type MlsdModel, mlsdPreprocessor } from './index.ts';

const FIXTURES = 'preprocessors/mlsd';
/** Raw network output vs PyTorch (max abs difference / max abs value). */
const OUTPUT_TOLERANCE = 1e-4;
/** Decoded endpoints vs the reference, in image pixels. */
const LINE_TOLERANCE = 1e-3;

let tensors: Map<string, FixtureTensor>;
let thresholds: [number, number][];
let seed: number;
let dir: string;
let weightsPath: string;

function referenceLines(i: number): number[][] {
  const { data, shape } = fixtureTensor(tensors, `lines_${i}`);
  return Array.from({ length: shape[0]! }, (_, k) => Array.from(data.subarray(k * 4, k * 4 + 4)));
}

function maxLineDifference(actual: readonly Segment[], expected: number[][]): number {
  expect(actual.length).toBe(expected.length);
  return Math.max(
    0,
    ...actual.flatMap((segment, k) => segment.map((v, j) => Math.abs(v - expected[k]![j]!))),
  );
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', log: () => {} });
  const io = await readFixtureTensors(fixturePath(`${FIXTURES}/mlsd.io.safetensors`));
  tensors = io.tensors;
  thresholds = JSON.parse(io.metadata.thresholds!) as [number, number][];
  seed = Number(io.metadata.seed);
  dir = await mkdtemp(join(tmpdir(), 'contour-mlsd-'));
  const overrides = new Map<string, Float32Array>();
  for (const [name, tensor] of tensors) {
    if (name.startsWith('override.'))
      overrides.set(name.slice('override.'.length), tensor.data as Float32Array);
  }
  weightsPath = await writeSyntheticWeights(
    fixturePath(`${FIXTURES}/mlsd_large_512_fp32.manifest.json`),
    seed,
    dir,
    'mlsd.safetensors',
    overrides,
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('mlsd post-processing (pred_lines decoding and drawing)', () => {
  it('decodes the reference network output into the reference lines and maps, for both threshold pairs', () => {
    const output = fixtureTensor(tensors, 'output');
    const [, channels, h, w] = output.shape as [number, number, number, number];
    const nhwc = nchwToNhwcData(output.data, output.shape);
    const image = fixtureTensor(tensors, 'image');
    const [height, width] = image.shape as [number, number];
    for (const [i, [scoreThreshold, distanceThreshold]] of thresholds.entries()) {
      const segments = decodeLines(nhwc, h, w, channels, { scoreThreshold, distanceThreshold })!;
      expect(segments.length).toBeGreaterThan(0);
      expect(maxLineDifference(segments, referenceLines(i))).toBeLessThan(1e-9);
      expect(
        Buffer.from(drawSegments(segments, width, height)).equals(
          fixtureTensor(tensors, `map_${i}`).data as Uint8Array,
        ),
      ).toBe(true);
    }
    // The thresholds cut: the stricter pair keeps fewer lines than the defaults.
    expect(referenceLines(1).length).toBeLessThan(referenceLines(0).length);
  });

  it('returns no lines where torch.topk(200) would raise (the original then returns black)', () => {
    expect(
      decodeLines(new Float32Array(10 * 10 * 9), 10, 10, 9, { scoreThreshold: 0, distanceThreshold: 0 }),
    ).toBe(undefined);
    expect(drawSegments(undefined, 4, 3).every((v) => v === 0)).toBe(true);
  });
});

describe.each(ENGINES)('mlsd on %s', (engineName) => {
  let model: MlsdModel;

  beforeAll(async () => {
    model = await loadMlsd({ [MLSD_WEIGHTS]: weightsPath });
  });

  afterAll(() => {
    model?.dispose();
  });

  it('matches the original network output, lines and maps', async () => {
    const engine = await testEngine(engineName);
    try {
      const image = fixtureTensor(tensors, 'image');
      const [height, width] = image.shape as [number, number];
      const rgb = { width, height, channels: 3 as const, data: image.data as Uint8Array };
      const expectedOutput = fixtureTensor(tensors, 'output');
      for (const [i, [valueThreshold, distanceThreshold]] of thresholds.entries()) {
        const detection = await detectLines(engine, model.network, rgb, valueThreshold, distanceThreshold);
        const error = relativeError(
          detection.output!.data,
          nchwToNhwcData(expectedOutput.data, expectedOutput.shape),
        );
        console.info(`mlsd ${engineName}: output relative error ${error.toExponential(2)}`);
        expect(error).toBeLessThan(OUTPUT_TOLERANCE);
        expect(maxLineDifference(detection.segments!, referenceLines(i))).toBeLessThan(LINE_TOLERANCE);
        const { map } = await mlsdPreprocessor.run({
          engine,
          image: rgb,
          model,
          params: { value_threshold: valueThreshold, distance_threshold: distanceThreshold },
        });
        const expectedMap = fixtureTensor(tensors, `map_${i}`).data;
        expect(map.channels).toBe(3);
        const mismatched = expectedMap.filter(
          (v, p) => map.data[p * 3] !== v || map.data[p * 3 + 2] !== v,
        ).length;
        expect(mismatched).toBe(0);
      }
    } finally {
      await engine.dispose();
    }
  });
});

describe('mlsd weights', () => {
  it('names the weight file when it is missing, unreadable or of another network', async () => {
    await expect(loadMlsd({})).rejects.toThrow(MLSD_WEIGHTS);
    await expect(loadMlsd({ [MLSD_WEIGHTS]: join(dir, 'absent.pth') })).rejects.toThrow(
      /mlsd_large_512_fp32\.pth: cannot be read/,
    );
    const junk = join(dir, 'junk.pth');
    await writeFile(junk, 'not a checkpoint');
    await expect(loadMlsd({ [MLSD_WEIGHTS]: junk })).rejects.toThrow(
      /mlsd_large_512_fp32\.pth: cannot be read/,
    );
    const other = join(dir, 'other.safetensors');
    await writeFile(
      other,
      encodeSafetensors({ 'model0.1.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } }),
    );
    await expect(loadMlsd({ [MLSD_WEIGHTS]: other })).rejects.toThrow(
      /mlsd_large_512_fp32\.pth: does not fit the network .*missing: backbone\.features\.0\.0\.weight/,
    );
  });
});
