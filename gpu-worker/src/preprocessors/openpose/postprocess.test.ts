import { describe, expect, it } from 'vitest';
import { drawPose } from './draw.ts';
import { gaussianBlurSigma08, gaussianFilterSigma3, resizeBilinearAlignCorners } from './filters.ts';
import { poseDict, poseKeypoints } from './index.ts';
import { bodyFromMaps, faceDetect, facePeaksFromMaps, handDetect, handPeaksFromMaps } from './postprocess.ts';
import { countDiff, readOpenposeFixture, readOpenposeJson } from './test-fixtures.ts';

interface PostExpected {
  H: number;
  W: number;
  candidate: number[][];
  subset: number[][];
  hands_list: [number, number, number, boolean][];
  faces_list: [number, number, number][];
  hands: number[][][];
  faces: number[][][];
}

const f = Math.fround;

describe('openpose post-processing against the original on stored heatmaps/PAFs', () => {
  it('finds the same peaks, limbs, people, hand/face boxes and landmarks, and draws the same map', async () => {
    const io = await readOpenposeFixture('post.io.safetensors');
    const ex = await readOpenposeJson<PostExpected>('post.expected.json');
    const { H, W } = ex;
    // the stored uint8 maps dequantised in float32 as make_reference.py does
    const hq = io.get('heatmap_u8')!.data as Uint8Array;
    const pq = io.get('paf_u8')!.data as Uint8Array;
    const heat = Float64Array.from(hq, (q) => f(q / 255));
    const paf = Float64Array.from(pq, (q) => f(f(q - 128) / 127));
    const body = bodyFromMaps(heat, paf, H, W);
    expect(body.subset).toEqual(ex.subset);
    expect(body.candidate.map((c) => [c[0]! / W, c[1]! / H])).toEqual(ex.candidate);

    const hands = handDetect(body, H, W);
    expect(hands.map((b) => [b.x, b.y, b.w, b.isLeft])).toEqual(ex.hands_list);
    const handPeaks = hands.map((b) => {
      const m = io.get('hand_u8')!.data as Uint8Array;
      const peaks = handPeaksFromMaps(
        Float64Array.from(m, (q) => f(q / 255)),
        b.w,
        b.w,
      );
      return peaks.map(([x, y]) => [f((x < 1e-6 ? -1 : x + b.x) / W), f((y < 1e-6 ? -1 : y + b.y) / H)]);
    });
    expect(handPeaks).toEqual(ex.hands);

    const faces = faceDetect(body, H, W);
    expect(faces.map((b) => [b.x, b.y, b.w])).toEqual(ex.faces_list);
    // the stored w x w face maps go through Face.__call__'s F.interpolate to the crop, which numpy clips at the
    // image border (face 1 is 20 x 24)
    const faceMaps = faces.map((b, i) => {
      const m = io.get(`face${i}_u8`)!.data as Uint8Array;
      const ch = Math.min(b.y + b.w, H) - b.y;
      const cw = Math.min(b.x + b.w, W) - b.x;
      const map = resizeBilinearAlignCorners(
        Float32Array.from(m, (q) => f(q / 255)),
        71,
        b.w,
        b.w,
        ch,
        cw,
      );
      return facePeaksFromMaps(map, 71, ch, cw);
    });
    expect(faces.map((b) => Math.min(b.x + b.w, W) - b.x)).toEqual([27, 20]);
    const facePeaks = faces.map((b, i) => {
      const peaks = faceMaps[i]!;
      return peaks
        .filter((p) => p !== null)
        .map(([x, y]) => [f((x < 1e-6 ? -1 : x + b.x) / W), f((y < 1e-6 ? -1 : y + b.y) / H)]);
    });
    expect(facePeaks).toEqual(ex.faces);

    // the same through the preprocessor's pose dict and OpenPose JSON
    const detected = {
      body,
      hands: hands.map((box) => ({
        box,
        peaks: handPeaksFromMaps(
          Float64Array.from(io.get('hand_u8')!.data, (q) => f(q / 255)),
          box.w,
          box.w,
        ),
      })),
      faces: faces.map((box, i) => ({ box, peaks: faceMaps[i]! })),
    };
    const dict = poseDict(detected, H, W);
    expect(dict).toEqual({
      bodies: { candidate: ex.candidate, subset: ex.subset },
      hands: ex.hands,
      faces: ex.faces,
    });
    const json = poseKeypoints(detected, H, W, { hand: true, face: true });
    expect(json.canvas_width).toBe(W);
    expect(json.people.length).toBe(2);
    json.people.forEach((person, n) => {
      const row = ex.subset[n]!;
      for (let j = 0; j < 18; j++) {
        const [x, y, c] = person.pose_keypoints_2d.slice(3 * j, 3 * j + 3);
        if (row[j] === -1) expect([x, y, c]).toEqual([0, 0, 0]);
        else expect([x! / W, y! / H, c]).toEqual([...ex.candidate[row[j]!]!, 1]);
      }
      expect(person.face_keypoints_2d?.length).toBe(210);
    });
    // person A has both arms, person B no left elbow: its left hand is not detected
    expect(json.people[0]!.hand_left_keypoints_2d?.length).toBe(63);
    expect(json.people[0]!.hand_right_keypoints_2d?.length).toBe(63);
    expect(json.people[1]!.hand_left_keypoints_2d).toBeUndefined();
    // hand keypoint 20 is below threshold in every stored hand map: reported missing
    expect(json.people[1]!.hand_right_keypoints_2d?.slice(60)).toEqual([0, 0, 0]);
    const bodyOnly = poseKeypoints(detected, H, W, { hand: false, face: false });
    expect(bodyOnly.people[0]!.hand_left_keypoints_2d).toBeUndefined();
    expect(bodyOnly.people[0]!.face_keypoints_2d).toBeUndefined();

    const bodies = { candidate: ex.candidate, subset: ex.subset };
    const full = drawPose({ bodies, hands: handPeaks, faces: facePeaks }, H, W);
    expect(countDiff(full.data, io.get('map_full')!.data as Uint8Array)).toBe(0);
    const only = drawPose({ bodies, hands: [], faces: [] }, H, W);
    expect(countDiff(only.data, io.get('map_body')!.data as Uint8Array)).toBe(0);
  });

  it('gaussian_filter(sigma=3) equals scipy bit for bit, short lines included', async () => {
    const io = await readOpenposeFixture('blur.io.safetensors');
    for (const name of ['gauss', 'gauss_small']) {
      const input = io.get(`${name}_in`)!;
      const [h, w] = input.shape as [number, number];
      const out = gaussianFilterSigma3(Float64Array.from(input.data), h, w);
      expect(Array.from(out)).toEqual(Array.from(io.get(`${name}_out`)!.data));
    }
  });

  it('cv2.GaussianBlur(sigma 0.8) on uint8 equals OpenCV bit for bit', async () => {
    const io = await readOpenposeFixture('blur.io.safetensors');
    for (let i = 0; i < 3; i++) {
      const input = io.get(`in${i}`)!;
      const [h, w, c] = input.shape as [number, number, number];
      const out = gaussianBlurSigma08(input.data as Uint8Array, h, w, c);
      expect(countDiff(out, io.get(`out${i}`)!.data as Uint8Array), `case ${i}`).toBe(0);
    }
  });
});
