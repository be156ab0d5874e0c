import { decodeImage, encodePng, hwc3 } from '@contour/shared/preprocess';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gaussianBlurMask } from '../../src/pipelines/image-modes.ts';
import {
  drawingPng,
  type ImageServer,
  makeJob,
  postJob,
  readMessages,
  resultOf,
  startImageServer,
  startWorkerProcess,
  type WorkerProcess,
} from './helpers.ts';

const SIZE = 256;

/** A mask PNG: white (repaint) on the left half, black elsewhere. */
function leftHalfMask(): Uint8Array {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) data.fill(255, y * SIZE * 3, y * SIZE * 3 + (SIZE / 2) * 3);
  return encodePng({ width: SIZE, height: SIZE, channels: 3, data });
}

const ref = (images: ImageServer, name: string) => ({
  key: `inputs/${name}.png`,
  url: images.url(name),
  width: SIZE,
  height: SIZE,
  content_type: 'image/png',
  sha256: images.sha256(name),
});

// The real worker process with the default (trained built-in) model: image-mode jobs through its HTTP API.
describe('gpu-worker img2img and inpaint jobs (built-in model, tfjs)', () => {
  let images: ImageServer;
  let worker: WorkerProcess;
  const init = drawingPng(SIZE);

  beforeAll(async () => {
    images = await startImageServer({ drawing: init, init, mask: leftHalfMask() });
    worker = await startWorkerProcess();
  }, 90_000);

  afterAll(async () => {
    await worker?.kill();
    await images?.close();
  });

  it('img2img runs int(steps * strength) steps from the init image', async () => {
    const job = makeJob(images, { steps: 4, init_image: ref(images, 'init'), strength: 0.5 });
    const messages = await readMessages(await postJob(worker.url, job));
    const result = resultOf(messages);
    const progress = messages.filter((m) => m.type === 'progress');
    expect(progress.map((m) => m.type === 'progress' && [m.step, m.total])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    const image = await decodeImage(new Uint8Array(Buffer.from(result.images[0]!.data_base64, 'base64')));
    expect([image.width, image.height]).toEqual([SIZE, SIZE]);
  });

  it('inpaint returns every unmasked pixel of the init image unchanged and repaints the masked half', async () => {
    const job = makeJob(images, {
      steps: 4,
      init_image: ref(images, 'init'),
      mask: ref(images, 'mask'),
      strength: 1,
      mask_blur: 4,
    });
    const result = resultOf(await readMessages(await postJob(worker.url, job)));
    const output = hwc3(
      await decodeImage(new Uint8Array(Buffer.from(result.images[0]!.data_base64, 'base64'))),
    );
    const input = hwc3(await decodeImage(init));
    const mask = new Float32Array(SIZE * SIZE);
    for (let p = 0; p < mask.length; p++) mask[p] = p % SIZE < SIZE / 2 ? 1 : 0;
    const blurred = gaussianBlurMask(mask, SIZE, SIZE, 4);
    let kept = 0;
    let repainted = 0;
    for (let i = 0; i < output.data.length; i++) {
      const m = blurred[(i / 3) | 0]!;
      if (m === 0) {
        kept++;
        if (output.data[i] !== input.data[i]) throw new Error(`unmasked byte ${i} changed`);
      } else if (m > 0.99 && output.data[i] !== input.data[i]) repainted++;
    }
    expect(kept).toBeGreaterThan(SIZE * SIZE); // most of the right half, 3 channels
    expect(repainted).toBeGreaterThan(SIZE * SIZE);
  });

  it('refuses an init image whose bytes do not match the job', async () => {
    const job = makeJob(images, { init_image: { ...ref(images, 'init'), sha256: '0'.repeat(64) } });
    const last = (await readMessages(await postJob(worker.url, job))).at(-1);
    expect(last).toMatchObject({ type: 'error', code: 'image_invalid' });
    expect(last?.type === 'error' && last.message).toContain('init_image');
  });
});
