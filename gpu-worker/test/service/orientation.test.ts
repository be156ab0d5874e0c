// The worker decodes control images and masks with the shared decoder, so phone photos stored sideways (EXIF
// orientation) are turned upright there exactly as at the edge. Fixtures: shared/test/fixtures/decode (made
// with OpenCV, see its README); the worker's result is compared with cv2.imread's pixels.
import { readFileSync } from 'node:fs';
import type { JobControl } from '@contour/shared/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareControl } from '../../src/service/images.ts';
import { type ImageServer, startImageServer } from './helpers.ts';

const fixture = (name: string) =>
  new Uint8Array(readFileSync(new URL(`../../../shared/test/fixtures/decode/${name}`, import.meta.url)));

let server: ImageServer;
beforeAll(async () => {
  server = await startImageServer({
    'sideways-6': fixture('orientation-6.png'), // stored 48x32, shown 32x48
    'mask-8': fixture('orientation-8.png'),
  });
});
afterAll(() => server.close());

function ref(name: string) {
  return {
    key: `inputs/test/${name}.png`,
    url: server.url(name),
    width: 32,
    height: 48,
    content_type: 'image/png',
    sha256: server.sha256(name),
  };
}

describe('worker control images and masks follow EXIF orientation', () => {
  it('uses the upright pixels of the control image and of the mask', async () => {
    const control: JobControl = {
      type: 'inpaint',
      image: ref('sideways-6'),
      mask: ref('mask-8'),
      preprocess: true,
      params: {},
      strength: 1,
      start: 0,
      end: 1,
    };
    // The job size equals the upright size, so no resampling stands between decode and the map.
    const made = await prepareControl(control, 32, 48, { timeoutMs: 5000, maxBytes: 1 << 20 });
    expect([made.image8.width, made.image8.height]).toEqual([32, 48]);
    const upright = fixture('orientation-6.png.ref.raw'); // cv2.imread's RGB, 32x48
    expect(Buffer.compare(made.image8.data, upright)).toBe(0);
    // Masked pixels (mask > 127 after cv2's orientation 8 turn) are -1 in the map, the others are the image.
    const mask = fixture('orientation-8.png.ref.raw');
    let masked = 0;
    for (let p = 0; p < mask.length; p += 3) {
      const expected = mask[p]! > 127 ? -1 : upright[p]! / 255;
      expect(made.map.data[p]).toBeCloseTo(expected, 6);
      if (expected === -1) masked++;
    }
    expect(masked).toBeGreaterThan(0);
    expect(masked).toBeLessThan(mask.length / 3);
  });
});
