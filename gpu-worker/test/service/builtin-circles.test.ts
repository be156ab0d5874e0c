import { decodeImage, encodePng, resizeImageTo } from '@contour/shared/preprocess';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { circleSpec, renderCircle } from '../../src/training/dataset.ts';
import { HELD_OUT_SEED, scoreGeneration } from '../../src/training/evaluate.ts';
import {
  type ImageServer,
  makeJob,
  postJob,
  readMessages,
  resultOf,
  startImageServer,
  startWorkerProcess,
  type WorkerProcess,
} from './helpers.ts';

// The worker as a new user runs it: no model configured, so it serves the trained built-in model
// (docs/TRAINING.md). A request at the API's sizes is sampled at the model's 64x64 and resized back; the image
// must still follow the control and the prompt.
const REQUEST_SIZE = 256;
const NATIVE = 64;
/** Held-out conditions (never trained on) drawn at the request size. */
const CONDITIONS = [0, 1, 2].map((index) => {
  const spec = circleSpec(HELD_OUT_SEED, index, NATIVE);
  const scale = REQUEST_SIZE / NATIVE;
  return {
    native: renderCircle(spec),
    large: renderCircle({
      ...spec,
      size: REQUEST_SIZE,
      centerX: spec.centerX * scale,
      centerY: spec.centerY * scale,
      radius: spec.radius * scale,
    }),
  };
});

let images: ImageServer;

beforeAll(async () => {
  images = await startImageServer(
    Object.fromEntries(CONDITIONS.map((c, i) => [`outline${i}`, encodePng(c.large.source)])),
  );
}, 90_000);

afterAll(async () => {
  await images?.close();
});

// The same worker on each engine (CONTOUR_ENGINE): tfjs (wasm) and ONNX Runtime (CPU, fp32).
describe.each([
  { engine: 'tfjs', device: 'wasm' },
  { engine: 'onnxruntime', device: 'cpu' },
])('gpu-worker default model: the trained circles model on $engine', ({ engine, device }) => {
  let worker: WorkerProcess;

  beforeAll(async () => {
    worker = await startWorkerProcess({ CONTOUR_ENGINE: engine });
  }, 90_000);

  afterAll(async () => {
    await worker?.kill();
  });

  it('reports its engine in the log, /readyz, /v1/models and /metrics', async () => {
    const expected = { name: engine, device, precision: 'fp32' };
    expect(worker.output()).toContain(`engine ${engine} device=${device} precision=fp32`);
    expect((await (await fetch(`${worker.url}/readyz`)).json()).engine).toMatchObject(expected);
    expect((await (await fetch(`${worker.url}/v1/models`)).json()).engine).toMatchObject(expected);
    const metrics = await (await fetch(`${worker.url}/metrics`)).text();
    expect(metrics).toContain(
      `contour_worker_engine_info{engine="${engine}",device="${device}",precision="fp32"} 1`,
    );
  });

  it('reports the built-in model, its native resolution and its only trained head', async () => {
    const models = await (await fetch(`${worker.url}/v1/models`)).json();
    expect(models.base).toMatchObject({
      name: 'contour-circles-tiny',
      builtin: true,
      native_resolution: NATIVE,
      suggested: { prompt: 'red circle with blue background', steps: 20, guidance_scale: 3 },
    });
    expect(models.base.description).toContain('circle');
    expect(models.control_types).toEqual(['canny']);
    expect(models.heads[0].name).toBe('contour-circles-tiny/controlnet-canny');
  });

  it('draws the requested circle where the control map puts it, at the requested size', async () => {
    const scores = [];
    for (const [index, condition] of CONDITIONS.entries()) {
      const template = makeJob(images);
      const job = makeJob(images, {
        prompt: condition.large.prompt,
        negative_prompt: '',
        steps: 20,
        guidance_scale: 3,
        seed: 7 + index,
        controls: [
          {
            ...template.controls[0]!,
            // The outline is the control map itself (as a client's own edge map would be).
            preprocess: false,
            image: {
              ...template.controls[0]!.image,
              url: images.url(`outline${index}`),
              sha256: images.sha256(`outline${index}`),
            },
          },
        ],
      });
      const result = resultOf(await readMessages(await postJob(worker.url, job)));
      expect(result.model.base).toBe('contour-circles-tiny');
      expect(result.timings_ms['resize']).toBeGreaterThanOrEqual(0);
      const image = await decodeImage(new Uint8Array(Buffer.from(result.images[0]!.data_base64, 'base64')));
      expect([image.width, image.height]).toEqual([REQUEST_SIZE, REQUEST_SIZE]);
      const rgb = { width: image.width, height: image.height, channels: 3 as const, data: image.data };
      scores.push(scoreGeneration(resizeImageTo(rgb, NATIVE, NATIVE), condition.native));
    }
    // The model's own target (docs/TRAINING.md: 0.769 on the 64 held-out conditions at 64x64) must survive the
    // resizing on the way in and out; these three score 0.89 here. Chance is about 0.12, the base alone 0.16.
    const meanF1 = scores.reduce((sum, s) => sum + s.f1, 0) / scores.length;
    expect(meanF1, JSON.stringify(scores)).toBeGreaterThan(0.7);
    expect(
      scores.every((s) => s.promptOk),
      JSON.stringify(scores),
    ).toBe(true);
  });
});
