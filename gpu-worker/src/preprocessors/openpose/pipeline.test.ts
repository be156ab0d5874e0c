import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, testEngine } from '../../../test/parity-helpers.ts';
import { initBackend } from '../../backend.ts';
import { type ModelEngine, tfModelEngine } from '../../engine/model-engine.ts';
import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import { syntheticTensor } from '../synthetic-weights.ts';
import { drawPose } from './draw.ts';
import { OpenposeModel, openposePreprocessors, poseDict } from './index.ts';
import { cropBox, estimateFace, estimateHand, rgbToBgr } from './pipeline.ts';
import { bodyFromMaps, faceDetect, handDetect } from './postprocess.ts';
import { countDiff, readOpenposeFixture, readOpenposeJson } from './test-fixtures.ts';

/** The reference's stand-in for the hand/face CPMs: one seeded Conv2d(3, n, 8, stride 8) (same output scale). */
class StubNetwork implements Network {
  readonly kind = 'openpose-stub';
  readonly params = new ParamStore();
  private readonly heads: string[];

  /** One conv per entry of `outputs`, named `weight`/`bias` as the reference's Conv2d (`head<i>.` when several). */
  constructor(outputs: number[], seed: number) {
    this.heads = outputs.map((_, i) => (outputs.length === 1 ? '' : `head${i}.`));
    outputs.forEach((n, i) => {
      const entries = [
        { name: `${this.heads[i]}weight`, shape: [n, 3, 8, 8], dtype: 'float32' },
        { name: `${this.heads[i]}bias`, shape: [n], dtype: 'float32' },
      ];
      for (const e of entries) {
        this.params.declare(e.name, e.shape);
        this.params.setFromTorch(e.name, syntheticTensor(e, seed));
      }
    });
  }

  forward<T>(ops: Ops<T>, [x]: T[]): NetworkOutput<T>[] {
    const p = (n: string) => this.params.get(n);
    return this.heads.map((h) => ({
      value: ops.conv(x!, p(`${h}weight`), p(`${h}bias`), { stride: 8 }),
      image: true,
    }));
  }

  dispose(): void {
    this.params.dispose();
  }
}

describe('openpose_full pipeline around the hand/face networks (stored body maps, stub CPMs)', async () => {
  const post = await readOpenposeFixture('post.io.safetensors');
  const stub = await readOpenposeFixture('stub.io.safetensors');
  const expected = await readOpenposeJson<{ hands: number[][][]; faces: number[][][] }>('stub.expected.json');
  const f = Math.fround;
  const image = stub.get('image')!;
  const [H, W] = image.shape as [number, number];
  const hand = new StubNetwork([22], 3);
  const face = new StubNetwork([71], 4);

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
  });
  afterAll(() => {
    hand.dispose();
    face.dispose();
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

      it('hand crops (blur, 4 scales, resize chains) and face crops give the original landmarks and map', async () => {
        const heat = Float64Array.from(post.get('heatmap_u8')!.data, (q) => f(q / 255));
        const paf = Float64Array.from(post.get('paf_u8')!.data, (q) => f(f(q - 128) / 127));
        const body = bodyFromMaps(heat, paf, H, W);
        const bgr = rgbToBgr({ data: image.data as Uint8Array, width: W, height: H });
        const crop = (x: number, y: number, w: number) => cropBox(bgr, x, y, w);
        const hands = [];
        for (const box of handDetect(body, H, W))
          hands.push({ box, peaks: await estimateHand(engine, hand, crop(box.x, box.y, box.w)) });
        const faces = [];
        for (const box of faceDetect(body, H, W))
          faces.push({ box, peaks: await estimateFace(engine, face, crop(box.x, box.y, box.w)) });
        const dict = poseDict({ body, hands, faces }, H, W);
        // landmarks within 1 px of the original's (normalised by W / H)
        expect(dict.hands.length).toBe(expected.hands.length);
        dict.hands.forEach((peaks, i) => {
          peaks.forEach(([x, y], j) => {
            expect(Math.abs(x! - expected.hands[i]![j]![0]!) * W, `hand ${i} point ${j}`).toBeLessThanOrEqual(
              1.001,
            );
            expect(Math.abs(y! - expected.hands[i]![j]![1]!) * H, `hand ${i} point ${j}`).toBeLessThanOrEqual(
              1.001,
            );
          });
        });
        expect(dict.faces.map((p) => p.length)).toEqual(expected.faces.map((p) => p.length));
        dict.faces.forEach((peaks, i) => {
          peaks.forEach(([x, y], j) => {
            expect(Math.abs(x! - expected.faces[i]![j]![0]!) * W, `face ${i} point ${j}`).toBeLessThanOrEqual(
              1.001,
            );
            expect(Math.abs(y! - expected.faces[i]![j]![1]!) * H, `face ${i} point ${j}`).toBeLessThanOrEqual(
              1.001,
            );
          });
        });
        const canvas = drawPose(dict, H, W);
        expect(countDiff(canvas.data, stub.get('map')!.data as Uint8Array)).toBe(0);
      });
    });
  }
});

describe('openpose preprocessor definitions', () => {
  it('names, weight files, and the map/keypoints a run returns (tfjs, stub networks)', async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    expect(openposePreprocessors.map((d) => d.name)).toEqual([
      'openpose',
      'openpose_hand',
      'openpose_face',
      'openpose_full',
    ]);
    expect(openposePreprocessors.map((d) => d.model!.files)).toEqual([
      ['body_pose_model.pth'],
      ['body_pose_model.pth', 'hand_pose_model.pth'],
      ['body_pose_model.pth', 'facenet.pth'],
      ['body_pose_model.pth', 'hand_pose_model.pth', 'facenet.pth'],
    ]);
    const body = new StubNetwork([38, 19], 5);
    const model = new OpenposeModel(
      body as never,
      new StubNetwork([22], 3) as never,
      new StubNetwork([71], 4) as never,
    );
    const stub = await readOpenposeFixture('stub.io.safetensors');
    const image = {
      width: 48,
      height: 40,
      channels: 3 as const,
      data: (stub.get('image')!.data as Uint8Array).slice(0, 48 * 40 * 3),
    };
    try {
      for (const definition of openposePreprocessors) {
        const { map, keypoints } = await definition.run({ engine: tfModelEngine, image, params: {}, model });
        expect([map.width, map.height, map.channels, map.data.length]).toEqual([48, 40, 3, 48 * 40 * 3]);
        expect(keypoints?.canvas_width).toBe(48);
        expect(keypoints?.canvas_height).toBe(40);
      }
    } finally {
      model.dispose();
    }
  });
});
