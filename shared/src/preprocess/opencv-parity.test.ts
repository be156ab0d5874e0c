// Decoding against OpenCV: every file in shared/test/fixtures/decode was written by make_fixtures.py there, and
// its `.ref.raw` holds what `cv2.imread` returned for it (see that folder's README.md). Covers EXIF orientation
// 1-8 in JPEG (APP1), PNG (eXIf) and WebP (EXIF), 16-bit, sub-byte grey, grey+alpha, palette(+tRNS), CMYK, YCCK.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeImage, readImageHeader } from './decode.ts';
import { registerWebpCodec } from './index.ts';

interface Case {
  file: string;
  width: number;
  height: number;
  channels: number;
  tolerance: number;
  reference: string;
}

const dir = new URL('../../test/fixtures/decode/', import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, dir)));
const manifest = JSON.parse(new TextDecoder().decode(read('manifest.json'))) as { cases: Case[] };

beforeAll(() => {
  const require = createRequire(import.meta.url);
  const wasm = (path: string) => new WebAssembly.Module(readFileSync(require.resolve(path)));
  registerWebpCodec({ decoder: wasm('@jsquash/webp/codec/dec/webp_dec.wasm') });
});

/** Largest absolute sample difference. */
function worstDifference(a: Uint8Array, b: Uint8Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

describe('decodeImage matches cv2.imread', () => {
  it('has a fixture for every orientation in every container', () => {
    const files = new Set(manifest.cases.map((c) => c.file));
    for (let o = 1; o <= 8; o++) {
      for (const ext of ['jpg', 'png', 'webp']) expect(files.has(`orientation-${o}.${ext}`)).toBe(true);
    }
  });

  it.each(manifest.cases.map((c) => [c.file, c] as const))('%s', async (_name, c) => {
    const bytes = read(c.file);
    const header = readImageHeader(bytes);
    expect([header.width, header.height]).toEqual([c.width, c.height]);
    const image = await decodeImage(bytes);
    expect([image.width, image.height, image.channels]).toEqual([c.width, c.height, c.channels]);
    const expected = read(`${c.file}.ref.raw`);
    expect(image.data.length).toBe(expected.length);
    expect(worstDifference(image.data, expected)).toBeLessThanOrEqual(c.tolerance);
  });

  it('reads the orientation tag from the header alone', () => {
    for (let o = 1; o <= 8; o++) {
      for (const ext of ['jpg', 'png', 'webp']) {
        expect(readImageHeader(read(`orientation-${o}.${ext}`)).orientation).toBe(o);
      }
    }
  });
});
