import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, fixturePath, relativeError, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import type { ModelEngine } from '../../engine/model-engine.ts';
import { encodeSafetensors } from '../../weights/safetensors.ts';
import { AnnotatorWeightsError } from '../annotator-weights.ts';
import { type ManifestEntry, syntheticTensor } from '../synthetic-weights.ts';
import { drawPose } from './draw.ts';
import { BODY_FILE, FACE_FILE, HAND_FILE, loadOpenpose, type OpenposeModel, poseDict } from './index.ts';
import { bodyMaps, rgbToBgr } from './pipeline.ts';
import { bodyFromMaps } from './postprocess.ts';
import { countDiff, readOpenposeFixture, readOpenposeJson } from './test-fixtures.ts';

/** Synthetic checkpoint (seed 1, the reference's) of one manifest, written as .safetensors. */
async function writeSynthetic(dir: string, manifest: string, file: string): Promise<string> {
  const entries = JSON.parse(
    await readFile(fixturePath(`preprocessors/openpose/${manifest}`), 'utf8'),
  ) as ManifestEntry[];
  const tensors = Object.fromEntries(
    entries.map((e) => [e.name, { dtype: 'F32' as const, shape: e.shape, data: syntheticTensor(e, 1) }]),
  );
  const path = join(dir, file.replace('.pth', '.safetensors'));
  await writeFile(path, encodeSafetensors(tensors));
  return path;
}

/** NCHW float32 data -> NHWC tensor. */
function nhwc(data: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(data, shape as [number, number, number, number]).transpose([0, 2, 3, 1]));
}

/** NHWC tensor -> NCHW data. */
function nchw(x: tf.Tensor): Float32Array {
  return tf.tidy(() => x.transpose([0, 3, 1, 2])).dataSync() as Float32Array;
}

interface PipeExpected {
  bodies: { candidate: number[][]; subset: number[][] };
}

describe('openpose: ControlNet 1.1 OpenposeDetector networks and pipeline on synthetic weights', async () => {
  const net = await readOpenposeFixture('net.io.safetensors');
  const pipe = await readOpenposeFixture('pipe.io.safetensors');
  const pipeExpected = await readOpenposeJson<PipeExpected>('pipe.expected.json');
  let dir: string;
  let paths: Record<string, string>;
  let model: OpenposeModel;

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-openpose-'));
    paths = {
      [BODY_FILE]: await writeSynthetic(dir, 'body.manifest.json', BODY_FILE),
      [HAND_FILE]: await writeSynthetic(dir, 'hand.manifest.json', HAND_FILE),
      [FACE_FILE]: await writeSynthetic(dir, 'face.manifest.json', FACE_FILE),
    };
    model = await loadOpenpose(paths, { hand: true, face: true });
  }, 120_000);

  afterAll(async () => {
    model?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('declares every tensor of the three checkpoints', async () => {
    const counts = await Promise.all(
      ['body', 'hand', 'face'].map(
        async (n) => (await readOpenposeJson<unknown[]>(`${n}.manifest.json`)).length,
      ),
    );
    expect(model.networks.map((n) => n.params.specs.size)).toEqual(counts);
  });

  it('names the file when a weight file is missing or is not the checkpoint', async () => {
    await expect(loadOpenpose({}, { hand: false, face: false })).rejects.toThrow(/body_pose_model\.pth/);
    await expect(
      loadOpenpose({ [BODY_FILE]: join(dir, 'absent.pth') }, { hand: false, face: false }),
    ).rejects.toThrow(/body_pose_model\.pth.*absent\.pth/);
    // facenet.pth given as body_pose_model.pth: refused from the header, before any data is read
    const error = await loadOpenpose({ [BODY_FILE]: paths[FACE_FILE]! }, { hand: false, face: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AnnotatorWeightsError);
    expect((error as Error).message).toMatch(/body_pose_model\.pth.*missing: conv4_3_CPM\.weight/);
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

      it('networks: body PAFs/heatmaps, hand and face heatmaps match the original (relative error < 2e-5)', async () => {
        const cases = [
          [model.body, 'body_input', ['body_paf', 'body_heatmap']],
          [model.hand!, 'hand_input', ['hand_heatmap']],
          [model.face!, 'face_input', ['face_heatmap']],
        ] as const;
        for (const [network, input, outputs] of cases) {
          const x = net.get(input)!;
          const result = await engine.runNetwork(network, [nhwc(x.data as Float32Array, x.shape)]);
          try {
            outputs.forEach((name, i) => {
              const expected = net.get(name)!.data as Float32Array;
              const actual = nchw(result[i]!);
              expect(actual.length, name).toBe(expected.length);
              expect(relativeError(actual, expected), name).toBeLessThan(2e-5);
            });
          } finally {
            tf.dispose(result);
          }
        }
      });

      it('body pipeline end to end: maps after the resize chain, peaks within 1 px, same people, same map', async () => {
        const image = pipe.get('image')!;
        const [height, width] = image.shape as [number, number];
        const rgb = { data: image.data as Uint8Array, width, height };
        const { heatmap, paf } = await bodyMaps(engine, model.body, rgbToBgr(rgb));
        expect(
          relativeError(Float32Array.from(heatmap), pipe.get('heatmap_avg')!.data as Float32Array),
        ).toBeLessThan(2e-5);
        expect(relativeError(Float32Array.from(paf), pipe.get('paf_avg')!.data as Float32Array)).toBeLessThan(
          1e-4,
        );
        const body = bodyFromMaps(heatmap, paf, height, width);
        const expected = pipeExpected.bodies;
        expect(body.candidate.length).toBe(expected.candidate.length);
        body.candidate.forEach((c, i) => {
          expect(Math.abs(c[0]! - expected.candidate[i]![0]! * width)).toBeLessThanOrEqual(1);
          expect(Math.abs(c[1]! - expected.candidate[i]![1]! * height)).toBeLessThanOrEqual(1);
        });
        expect(body.subset).toEqual(expected.subset);
        const canvas = drawPose(poseDict({ body, hands: [], faces: [] }, height, width), height, width);
        expect(countDiff(canvas.data, pipe.get('map')!.data as Uint8Array)).toBe(0);
      });
    });
  }
});
