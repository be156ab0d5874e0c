import { describe, expect, it } from 'vitest';
import { fixtureTensor, readFixtureTensors } from '../../../test/fixture-tensors.ts';
import { fixturePath } from '../../../test/parity-helpers.ts';
import { clipLine, drawLine } from './cv-line.ts';

describe('cv2.line (thickness 1, LINE_8)', () => {
  it('draws the same pixels as OpenCV 4.6 for 400 seeded segments, most of them clipped', async () => {
    const { tensors } = await readFixtureTensors(fixturePath('preprocessors/mlsd/mlsd.io.safetensors'));
    const points = fixtureTensor(tensors, 'line_points');
    const canvases = fixtureTensor(tensors, 'line_canvases');
    const [count, height, width] = canvases.shape as [number, number, number];
    const mismatched: number[] = [];
    for (let i = 0; i < count; i++) {
      const [x0, y0, x1, y1] = Array.from(points.data.subarray(i * 4, i * 4 + 4));
      const plane = { width, height, data: new Uint8Array(width * height) };
      drawLine(plane, x0!, y0!, x1!, y1!);
      const expected = canvases.data.subarray(i * width * height, (i + 1) * width * height);
      if (!plane.data.every((v, j) => v === expected[j])) mismatched.push(i);
    }
    expect(mismatched).toEqual([]);
  });

  it('clipLine drops segments that miss the image and keeps inside ones unchanged', () => {
    expect(clipLine(10, 10, [-5, -5, -1, 20])).toBeUndefined();
    expect(clipLine(10, 10, [1, 2, 3, 4])).toEqual([1, 2, 3, 4]);
    expect(clipLine(10, 10, [-10, 5, 20, 5])).toEqual([0, 5, 9, 5]);
  });
});
