// Model-free preprocessors against ControlNet 1.1's own code: shared/test/fixtures/model-free/make_fixtures.py ran
// the original ContentShuffleDetector (numpy seeding, cv2 INTER_CUBIC noise, cv2.remap) on these inputs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { contentShuffle, inpaintPreview, NumpyRandom, tileResample } from './model-free.ts';

const dir = new URL('../../test/fixtures/model-free/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, dir)));
const manifest = JSON.parse(new TextDecoder().decode(read('manifest.json'))) as {
  shuffle: {
    input: string;
    reference: string;
    width: number;
    height: number;
    out_width: number;
    out_height: number;
    seed: number;
  }[];
};

describe('contentShuffle (1.1 ContentShuffleDetector)', () => {
  it('draws numpy seed 42 stream exactly', () => {
    const random = new NumpyRandom(42);
    expect([random.random(), random.random()]).toEqual([0.3745401188473625, 0.9507143064099162]);
  });

  it.each(manifest.shuffle)('$width x $height -> $out_width x $out_height, seed $seed', (c) => {
    const image = { width: c.width, height: c.height, channels: 3 as const, data: read(c.input) };
    const out = contentShuffle(image, c.out_width, c.out_height, c.seed);
    const reference = read(c.reference);
    expect([out.width, out.height]).toEqual([c.out_width, c.out_height]);
    let worst = 0;
    let differing = 0;
    for (let i = 0; i < reference.length; i++) {
      const d = Math.abs(out.data[i]! - reference[i]!);
      worst = Math.max(worst, d);
      if (d) differing++;
    }
    expect({ worst, differing }).toEqual({ worst: 0, differing: 0 });
  });
});

describe('tileResample and inpaintPreview', () => {
  const image = { width: 8, height: 4, channels: 3 as const, data: new Uint8Array(96).map((_, i) => i) };

  it('returns the image at rates below 1.1 and asks the resizer for floor(size / rate) otherwise', () => {
    expect(tileResample(image, 1, () => image).data).toEqual(image.data);
    const sizes: number[][] = [];
    tileResample(image, 3, (img, w, h) => {
      sizes.push([w, h]);
      return img;
    });
    expect(sizes).toEqual([[2, 1]]);
  });

  it('makes repaint pixels transparent and keeps the rest opaque', () => {
    const mask = { width: 8, height: 4, channels: 1 as const, data: new Uint8Array(32) };
    mask.data[5] = 255;
    const preview = inpaintPreview(image, mask);
    expect(preview.channels).toBe(4);
    expect(preview.data[5 * 4 + 3]).toBe(0);
    expect(preview.data[4 * 4 + 3]).toBe(255);
    expect([...preview.data.subarray(5 * 4, 5 * 4 + 3)]).toEqual([15, 16, 17]);
  });
});
