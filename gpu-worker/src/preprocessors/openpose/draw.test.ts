import { describe, expect, it } from 'vitest';
import { drawBodyPose, drawFacePose, drawHandPose } from './draw.ts';
import { countDiff, readOpenposeFixture, readOpenposeJson } from './test-fixtures.ts';

interface DrawCase {
  H: number;
  W: number;
  candidate: number[][];
  subset: number[][];
  hands: number[][][];
  faces: number[][][];
}

describe('openpose drawing (cv2 rasterisation)', () => {
  it('draws random poses, some clipped at the borders, exactly as util.draw_bodypose/handpose/facepose', async () => {
    const cases = await readOpenposeJson<DrawCase[]>('draw.expected.json');
    const io = await readOpenposeFixture('draw.io.safetensors');
    expect(cases.length).toBe(12);
    cases.forEach((c, i) => {
      const canvas = { data: new Uint8Array(c.H * c.W * 3), width: c.W, height: c.H };
      drawBodyPose(canvas, c);
      drawHandPose(canvas, c.hands);
      drawFacePose(canvas, c.faces);
      const expected = io.get(`case${i}`)!.data as Uint8Array;
      expect(countDiff(canvas.data, expected), `case ${i}`).toBe(0);
    });
  });
});
