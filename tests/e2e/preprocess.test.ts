/**
 * Preprocessors end to end: `npm start`'s stack (the real edge under wrangler's dev server, the real GPU worker
 * process) with an annotator folder of seeded synthetic full-size checkpoints (the layouts the parity fixtures were
 * made from). Every control type's preprocessor through POST /v1/preprocess (edge ones at the edge, network ones on
 * the worker), a generation that preprocesses on the worker, and a preprocessor whose weights are missing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiError, Contour, GenerationFailedError } from '@contour/sdk';
import {
  CONTROL_TYPE_PREPROCESSORS,
  type ControlType,
  PREPROCESSORS,
  type PreprocessorName,
} from '@contour/shared/contracts';
import { decodeImage } from '@contour/shared/preprocess';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREPROCESSOR_DEFINITIONS } from '../../gpu-worker/src/preprocessors/index.ts';
import {
  ANNOTATOR_MANIFESTS,
  writeSyntheticAnnotators,
} from '../../gpu-worker/src/preprocessors/synthetic-annotators.ts';
import { freePort, ROOT, type Stack, startStack, stopStack } from './stack.ts';

const PHOTO = path.join(ROOT, 'tests/fixtures/toy.png');
/** Left out of the annotator folder on purpose: its preprocessors must answer 422 naming it. */
const WITHHELD = 'table5_pidinet.pth';
/** Small maps keep the CPU work of a dozen annotators short. */
const DETECT = 128;

let stack: Stack | undefined;
let contour: Contour;
let photo: Uint8Array;
const temporary: string[] = [];

/** Network preprocessors this build has, with every weight file in the synthetic folder. */
const built = new Set(PREPROCESSOR_DEFINITIONS.map((d) => d.name));
const installable = (name: PreprocessorName) =>
  built.has(name) &&
  PREPROCESSORS[name].weights.every((file) => file in ANNOTATOR_MANIFESTS && file !== WITHHELD);

/** One preprocessor per control type: the type's default when it can run here, else the first one that can. */
const perType = (Object.keys(CONTROL_TYPE_PREPROCESSORS) as ControlType[]).flatMap((type) => {
  const runnable = CONTROL_TYPE_PREPROCESSORS[type].filter(
    (name) => PREPROCESSORS[name].stage === 'edge' || installable(name),
  );
  return runnable.length ? [{ type, preprocessor: runnable[0]! }] : [];
});

beforeAll(async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'contour-e2e-state-'));
  const annotators = await mkdtemp(path.join(tmpdir(), 'contour-e2e-annotators-'));
  temporary.push(stateDir, annotators);
  const files = Object.keys(ANNOTATOR_MANIFESTS).filter((file) => file !== WITHHELD);
  await writeSyntheticAnnotators(annotators, files);
  stack = await startStack({
    CONTOUR_EDGE_PORT: String(await freePort()),
    CONTOUR_WORKER_PORT: String(await freePort()),
    CONTOUR_STATE_DIR: stateDir,
    CONTOUR_ANNOTATOR_DIR: annotators,
    // tfjs: no ONNX graph build per annotator (the parity tests cover ONNX Runtime).
    CONTOUR_ENGINE: 'tfjs',
    // tfjs-wasm holds every model in one 4 GiB heap: keep few annotators loaded (evictions free it).
    CONTOUR_PREPROCESSOR_MEMORY_MB: '600',
    // The built-in model with a head for every type (untrained ones for types it was not trained on).
    CONTOUR_BUILTIN_HEADS: Object.keys(CONTROL_TYPE_PREPROCESSORS).join(','),
  });
  const url = new URL(stack.playground);
  const apiKey = /key=(sk_\w+)/.exec(url.hash)![1]!;
  contour = new Contour({ apiKey, baseUrl: url.origin, timeoutMs: 300_000, maxRetries: 0 });
  photo = new Uint8Array(await readFile(PHOTO));
}, 300_000);

afterAll(async () => {
  await stopStack(stack);
  await Promise.all(temporary.map((dir) => rm(dir, { recursive: true, force: true })));
}, 60_000);

describe('POST /v1/preprocess through the edge and the worker', () => {
  it.each(perType)(
    '$type: $preprocessor returns the map at image_resolution',
    async ({ type, preprocessor }) => {
      const network = PREPROCESSORS[preprocessor].stage === 'worker';
      const result = await contour.preprocess({
        type,
        preprocessor,
        image: photo,
        image_resolution: 256,
        ...(preprocessor === 'inpaint' ? { mask: photo } : {}),
        ...(network ? { params: { detect_resolution: DETECT } } : {}),
      });
      expect(result).toMatchObject({
        type,
        preprocessor,
        width: 256,
        height: 256,
        stage: PREPROCESSORS[preprocessor].stage,
      });
      if (network) expect(result.detect_resolution).toBe(DETECT);
      const map = await decodeImage(new Uint8Array(await (await fetch(result.url)).arrayBuffer()));
      expect([map.width, map.height]).toEqual([256, 256]);
    },
    300_000,
  );

  it('pixel_perfect picks the detect resolution from the input and output sizes', async () => {
    const name = perType.find((p) => PREPROCESSORS[p.preprocessor].stage === 'worker')!.preprocessor;
    const result = await contour.preprocess({
      preprocessor: name,
      image: photo,
      image_resolution: 256,
      pixel_perfect: true,
    });
    expect(result.detect_resolution).toBe(256);
  }, 300_000);

  it('a preprocessor without its weights is a 422 on `preprocessor` naming the file', async () => {
    const error = await contour
      .preprocess({ preprocessor: 'softedge_pidinet', image: photo, params: { detect_resolution: DETECT } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    const apiError = error as ApiError;
    expect(apiError.status).toBe(422);
    expect(apiError.code).toBe('model_not_available');
    expect(apiError.message).toContain(WITHHELD);
    expect(apiError.details[0]?.path).toBe('preprocessor');
  }, 120_000);
});

describe('a generation that preprocesses on the worker', () => {
  it('runs the annotator, generates and returns the detected map', async () => {
    const unit = perType.find((p) => PREPROCESSORS[p.preprocessor].stage === 'worker')!;
    const generation = await contour.generations.run({
      prompt: 'a toy',
      controls: [
        {
          type: unit.type,
          preprocessor: unit.preprocessor,
          image: photo,
          preprocess: true,
          params: { detect_resolution: DETECT },
        } as never,
      ],
      steps: 2,
      image_resolution: 256,
    });
    expect(generation.status).toBe('succeeded');
    expect(generation.control_maps.length).toBe(1);
    const map = await decodeImage(
      new Uint8Array(await (await fetch(generation.control_maps[0]!.url)).arrayBuffer()),
    );
    expect([map.width, map.height]).toEqual([256, 256]);
  }, 300_000);

  it('fails without a charge when the unit names a preprocessor whose weights are missing', async () => {
    const before = await contour.billing.balance();
    const error = await contour.generations
      .run({
        prompt: 'a toy',
        controls: [{ type: 'softedge', preprocessor: 'softedge_pidinet', image: photo, preprocess: true }],
        steps: 2,
        image_resolution: 256,
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GenerationFailedError);
    const failed = (error as GenerationFailedError).generation;
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('model_not_available');
    expect(failed.error?.message).toContain(WITHHELD);
    const after = await contour.billing.balance();
    expect(after.available + after.reserved).toBe(before.available + before.reserved);
    expect(after.reserved).toBe(0);
  }, 300_000);
});
