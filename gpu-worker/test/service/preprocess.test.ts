// Network preprocessors in a real worker process: signed POST /v1/preprocess (map + timings), a generation job that
// preprocesses on the worker, and the refusals when weights are missing. Seeded synthetic annotator checkpoints
// (the parity fixtures' layouts) stand in for the real files; HED and M-LSD keep it quick.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerPreprocessResultSchema } from '@contour/shared/contracts';
import { decodeImage } from '@contour/shared/preprocess';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeSyntheticAnnotators } from '../../src/preprocessors/synthetic-annotators.ts';
import {
  drawingPng,
  type ImageServer,
  makeJob,
  postJob,
  readMessages,
  resultOf,
  signedFetch,
  startImageServer,
  startWorkerProcess,
  type WorkerProcess,
} from './helpers.ts';

let worker: WorkerProcess;
let images: ImageServer;
let annotators: string;

const imageRef = () => ({
  key: 'inputs/gen_test/drawing.png',
  url: images.url('drawing'),
  width: 256,
  height: 256,
  content_type: 'image/png',
  sha256: images.sha256('drawing'),
});

const preprocessRequest = (preprocessor: string, params: Record<string, number> = {}) =>
  JSON.stringify({
    version: 1,
    preprocessor,
    image: imageRef(),
    params: { detect_resolution: 128, ...params },
    width: 192,
    height: 192,
  });

beforeAll(async () => {
  annotators = await mkdtemp(join(tmpdir(), 'contour-worker-annotators-'));
  await writeSyntheticAnnotators(annotators, ['ControlNetHED.pth', 'mlsd_large_512_fp32.pth']);
  images = await startImageServer({ drawing: drawingPng() });
  worker = await startWorkerProcess({
    CONTOUR_ANNOTATOR_DIR: annotators,
    CONTOUR_BUILTIN_HEADS: 'canny,softedge,mlsd',
  });
}, 120_000);

afterAll(async () => {
  await worker?.kill();
  await images?.close();
  await rm(annotators, { recursive: true, force: true });
});

describe('worker network preprocessors', () => {
  it('/v1/models lists each preprocessor with its weights installed or missing', async () => {
    const models = (await (await fetch(`${worker.url}/v1/models`)).json()) as {
      preprocessors: { name: string; available: boolean; missing: string[] }[];
    };
    const byName = new Map(models.preprocessors.map((p) => [p.name, p]));
    expect(byName.get('softedge_hed')?.available).toBe(true);
    expect(byName.get('mlsd')?.available).toBe(true);
    expect(byName.get('depth_midas')).toMatchObject({
      available: false,
      missing: ['dpt_hybrid-midas-501f0c75.pt'],
    });
  });

  it.each(['softedge_hed', 'mlsd'])(
    'POST /v1/preprocess runs %s and returns the map at the asked size',
    async (name) => {
      const response = await signedFetch(worker.url, 'POST', '/v1/preprocess', preprocessRequest(name));
      const body = await response.json();
      expect(response.status, JSON.stringify(body) + worker.output().slice(-2000)).toBe(200);
      const result = WorkerPreprocessResultSchema.parse(body);
      expect(result).toMatchObject({ preprocessor: name, width: 192, height: 192 });
      expect(result.timings_ms['preprocess']).toBeGreaterThan(0);
      const map = await decodeImage(new Uint8Array(Buffer.from(result.data_base64, 'base64')));
      expect([map.width, map.height]).toEqual([192, 192]);
    },
    120_000,
  );

  it('refuses a preprocessor without weights with 422 on `preprocessor`, naming the file', async () => {
    const response = await signedFetch(
      worker.url,
      'POST',
      '/v1/preprocess',
      preprocessRequest('softedge_pidinet'),
    );
    expect(response.status).toBe(422);
    const { error } = (await response.json()) as {
      error: { code: string; message: string; details: { path: string }[] };
    };
    expect(error.code).toBe('model_not_available');
    expect(error.message).toContain('table5_pidinet.pth');
    expect(error.details[0]?.path).toBe('preprocessor');
  });

  it('refuses unsigned preprocess requests', async () => {
    const response = await fetch(`${worker.url}/v1/preprocess`, {
      method: 'POST',
      body: preprocessRequest('mlsd'),
    });
    expect(response.status).toBe(401);
  });

  it('a job with preprocess: true runs the annotator before sampling and returns its map', async () => {
    const job = makeJob(images, { width: 128, height: 128, steps: 2 });
    job.controls = [
      {
        ...job.controls[0]!,
        type: 'softedge',
        preprocessor: 'softedge_hed',
        params: { detect_resolution: 128 },
      },
    ];
    const messages = await readMessages(await postJob(worker.url, job));
    const result = resultOf(messages);
    expect(result.control_maps).toHaveLength(1);
    const map = await decodeImage(new Uint8Array(Buffer.from(result.control_maps[0]!.data_base64, 'base64')));
    expect([map.width, map.height]).toEqual([128, 128]);
  }, 120_000);

  it('a job naming a preprocessor without weights is refused at submit (422 on controls.0.preprocessor)', async () => {
    const job = makeJob(images);
    job.controls = [{ ...job.controls[0]!, type: 'softedge', preprocessor: 'softedge_pidinet', params: {} }];
    const response = await postJob(worker.url, job);
    expect(response.status).toBe(422);
    const { error } = (await response.json()) as { error: { message: string; details: { path: string }[] } };
    expect(error.details[0]?.path).toBe('controls.0.preprocessor');
    expect(error.message).toContain('table5_pidinet.pth');
  });
});
