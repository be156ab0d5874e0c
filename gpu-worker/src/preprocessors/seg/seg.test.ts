import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image8 } from '@contour/shared/preprocess';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { openWeightFile } from '../../weights/open.ts';
import { encodeSafetensors, SafetensorsFile } from '../../weights/safetensors.ts';
import { type ManifestEntry, syntheticTensor } from '../synthetic-weights.ts';
import {
  ADE20K_PALETTE,
  argmaxClasses,
  loadUniformer,
  paletteMap,
  prepareInput,
  rescaleSize,
  segment,
  type UniformerModel,
  uniformerKeyMapping,
  uniformerModelSpec,
} from './index.ts';

const DIR = 'preprocessors/seg';
/** Bound on the stride-4 logits against PyTorch, both engines: max abs difference / max abs reference value. */
const LOGITS_TOLERANCE = 1e-4;

let io: SafetensorsFile;
let ioBytes: Buffer;
let meta: Record<string, string>;
let work: string;
let model: UniformerModel;
let image: Image8<3>;

/** A U8 tensor of the io file (SafetensorsFile reads float and int tensors only). */
function readU8(name: string): Uint8Array {
  const headerLength = Number(ioBytes.readBigUInt64LE(0));
  const [begin, end] = io.info(name).dataOffsets;
  return new Uint8Array(ioBytes.subarray(8 + headerLength + begin, 8 + headerLength + end));
}

beforeAll(async () => {
  await initBackend({ force: 'wasm', log: () => {} });
  io = await SafetensorsFile.open(fixturePath(`${DIR}/upernet_global_small.io.safetensors`));
  ioBytes = await readFile(fixturePath(`${DIR}/upernet_global_small.io.safetensors`));
  meta = io.metadata;
  const data = readU8('image');
  const [height, width] = io.info('image').shape as [number, number];
  image = { width, height, channels: 3, data };
  // The reference's weights, regenerated from the checkpoint manifest (auxiliary head included, as in the file).
  const manifest = JSON.parse(
    await readFile(fixturePath(`${DIR}/upernet_global_small.manifest.json`), 'utf8'),
  ) as ManifestEntry[];
  const seed = Number(meta['seed']);
  const tensors: Parameters<typeof encodeSafetensors>[0] = {};
  for (const entry of manifest) {
    if (entry.dtype !== 'float32') continue;
    tensors[entry.name] = { dtype: 'F32', shape: entry.shape, data: syntheticTensor(entry, seed) };
  }
  work = await mkdtemp(join(tmpdir(), 'contour-seg-'));
  await writeFile(join(work, 'upernet_global_small.safetensors'), encodeSafetensors(tensors));
  model = await uniformerModelSpec.load({
    'upernet_global_small.pth': join(work, 'upernet_global_small.safetensors'),
  });
}, 120_000);

afterAll(async () => {
  model?.dispose();
  await io?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('seg_uniformer pre- and post-processing', () => {
  it('rescales to the (2048, 512) test scale as mmcv.rescale_size', () => {
    const sizes = JSON.parse(meta['rescale_in']!) as [number, number][];
    const expected = JSON.parse(meta['rescale_out']!) as [number, number][];
    expect(sizes.map(([w, h]) => rescaleSize(w, h, [2048, 512]))).toEqual(expected);
  });

  it('feeds the network what mmcv resize + imnormalize(to_rgb) give', async () => {
    const scale = JSON.parse(meta['test_scale']!) as [number, number];
    const input = prepareInput(image, scale);
    const [, c, h, w] = io.info('input').shape as number[];
    expect([input.height, input.width, c]).toEqual([h, w, 3]);
    const ref = await io.readFloat32('input');
    let maxDiff = 0;
    for (let y = 0; y < h!; y++)
      for (let x = 0; x < w!; x++)
        for (let k = 0; k < 3; k++) {
          const diff = Math.abs(input.data[(y * w! + x) * 3 + k]! - ref[(k * h! + y) * w! + x]!);
          maxDiff = Math.max(maxDiff, diff);
        }
    expect(maxDiff).toBe(0);
  });

  it('takes the first maximum on ties, as torch.argmax', () => {
    const logits = new Float32Array([0, 2, 2, 1, /* pixel 2 */ 5, 5, 5, 5, /* pixel 3 */ -3, -2, -1, -1]);
    expect([...argmaxClasses(logits, 4)]).toEqual([1, 0, 2]);
    expect([...paletteMap(new Uint8Array([2]), 1, 1).data]).toEqual([6, 230, 230]);
  });

  it('paints with the ADE20K palette get_palette("ade") returns', async () => {
    expect([...ADE20K_PALETTE]).toEqual([...readU8('palette')]);
  });

  it('reads the mmcv checkpoint layout ({meta, state_dict}) and ignores the auxiliary head', async () => {
    const file = await openWeightFile(fixturePath(`${DIR}/layout.pth`));
    try {
      const keys = [...file.tensors.keys()].sort();
      expect(keys).toEqual([
        'auxiliary_head.conv_seg.bias',
        'backbone.blocks1.0.norm1.num_batches_tracked',
        'backbone.norm1.weight',
        'decode_head.conv_seg.bias',
      ]);
      expect(keys.filter((k) => uniformerKeyMapping.belongs(k))).toEqual([
        'backbone.norm1.weight',
        'decode_head.conv_seg.bias',
      ]);
    } finally {
      await file.close();
    }
  });

  it('names the weight file when it is missing or is not this checkpoint', async () => {
    await expect(loadUniformer(join(work, 'absent.pth'))).rejects.toThrow(
      /upernet_global_small\.pth.*absent\.pth/,
    );
    await expect(loadUniformer(fixturePath(`${DIR}/layout.pth`))).rejects.toThrow(
      /upernet_global_small\.pth .*layout\.pth.* is not the UperNet UniFormer-S checkpoint: .*missing: backbone\./,
    );
    await expect(uniformerModelSpec.load({})).rejects.toThrow(/upernet_global_small\.pth/);
  });
});

describe.each(ENGINES)('seg_uniformer on %s', (name) => {
  let engine: ModelEngine;
  beforeAll(async () => {
    engine = await testEngine(name);
  });
  afterAll(async () => {
    await engine?.dispose();
  });

  it('matches the original annotator (logits, class map, colour map)', async () => {
    const scale = JSON.parse(meta['test_scale']!) as [number, number];
    const result = await segment(engine, model.net, image, { scale, withLogits: true });
    // Stride-4 logits: ours NHWC, the reference NCHW.
    const [, c, h, w] = io.info('logits').shape as number[];
    expect(result.logits!.shape).toEqual([1, h, w, c]);
    const ref = await io.readFloat32('logits');
    const ours = new Float32Array(ref.length);
    for (let y = 0; y < h!; y++)
      for (let x = 0; x < w!; x++)
        for (let k = 0; k < c!; k++)
          ours[(k * h! + y) * w! + x] = result.logits!.data[(y * w! + x) * c! + k]!;
    const err = relativeError(ours, ref);
    console.log(`seg_uniformer ${name}: logits relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(LOGITS_TOLERANCE);

    const labels = readU8('labels');
    const differing = labels.reduce((n, l, i) => n + (l === result.labels[i] ? 0 : 1), 0);
    expect(differing).toBe(0);
    expect(result.map.width).toBe(image.width);
    expect(result.map.height).toBe(image.height);
    expect(Buffer.from(result.map.data).equals(Buffer.from(readU8('map')))).toBe(true);
  }, 120_000);
});
