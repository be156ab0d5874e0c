import type { WorkerMessage } from '@contour/shared/contracts';
import { decodeImage } from '@contour/shared/preprocess';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  drawingPng,
  type ImageServer,
  makeJob,
  metricValue,
  postJob,
  readMessages,
  scrape,
  startImageServer,
  startWorkerProcess,
  streamMessages,
  type WorkerProcess,
} from './helpers.ts';

let images: ImageServer;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  images = await startImageServer({ drawing: drawingPng() });
});
afterEach(async () => {
  await worker?.kill();
  worker = undefined;
});
afterAll(async () => {
  await images?.close();
});

/** Resolves when the first progress line of a streamed job arrives; `all` resolves at the end of the stream. */
function follow(response: Response) {
  let started!: () => void;
  const firstStep = new Promise<void>((resolve) => {
    started = resolve;
  });
  const all = streamMessages(response, (message) => {
    if (message.type === 'progress') started();
  });
  return { firstStep, all };
}

async function pixels(message: WorkerMessage | undefined, index = 0): Promise<Uint8Array> {
  if (message?.type !== 'result') throw new Error(`expected a result, got ${JSON.stringify(message)}`);
  const png = Buffer.from(message.images[index]!.data_base64, 'base64');
  return (await decodeImage(new Uint8Array(png))).data;
}

// The `random` built-in model samples at the requested size, so its jobs run long enough for these timings;
// the default trained model samples at 64x64 (builtin-circles.test.ts).
const RANDOM_MODEL = { CONTOUR_BUILTIN_MODEL: 'random' };

describe('gpu-worker lifecycle (real process)', () => {
  it('on SIGTERM finishes the running job, hands back the waiting one, refuses new ones and exits 0', async () => {
    worker = await startWorkerProcess(RANDOM_MODEL);
    const running = follow(await postJob(worker.url, makeJob(images, { steps: 6 })));
    const waiting = readMessages(await postJob(worker.url, makeJob(images, { steps: 2 })));
    await running.firstStep;
    worker.child.kill('SIGTERM');
    const waitingMessages = await waiting;
    expect(waitingMessages.at(-1)).toMatchObject({
      type: 'error',
      code: 'backend_unavailable',
      retryable: true,
    });
    const refused = await postJob(worker.url, makeJob(images)).catch(() => undefined);
    if (refused) expect(refused.status).toBe(503);
    const runningMessages = await running.all;
    expect(runningMessages.at(-1)?.type).toBe('result');
    expect(await worker.exited).toBe(0);
  });

  it('hands the running job back (retryable) when the grace period runs out', async () => {
    worker = await startWorkerProcess({ ...RANDOM_MODEL, CONTOUR_SHUTDOWN_GRACE_MS: '200' });
    const running = follow(await postJob(worker.url, makeJob(images, { steps: 60 })));
    await running.firstStep;
    worker.child.kill('SIGTERM');
    const messages = await running.all;
    expect(messages.at(-1)).toMatchObject({ type: 'error', code: 'backend_unavailable', retryable: true });
    expect(messages.filter((m) => m.type === 'progress').length).toBeLessThan(60);
    expect(await worker.exited).toBe(0);
  });

  it('micro-batches compatible waiting jobs; each job keeps its own seed', async () => {
    worker = await startWorkerProcess({ ...RANDOM_MODEL, CONTOUR_MAX_BATCH: '4' });
    const url = worker.url;
    // Alone first, for reference images.
    // 128x128 keeps this fast; the batching logic does not depend on the size.
    const small = { width: 128, height: 128, steps: 3 };
    const jobB = makeJob(images, { ...small, seed: 1 });
    const jobC = makeJob(images, { ...small, seed: 2, prompt: 'another prompt', num_images: 2 });
    const aloneB = await pixels((await readMessages(await postJob(url, jobB))).at(-1));
    const aloneC = await pixels((await readMessages(await postJob(url, jobC))).at(-1), 1);
    // A keeps the device busy while B and C queue up; they then run as one batch of two jobs.
    const blocker = follow(await postJob(url, makeJob(images, { ...small, steps: 4 })));
    await blocker.firstStep;
    const batchedB = readMessages(await postJob(url, { ...jobB, job_id: `${jobB.job_id}-again` }));
    const batchedC = readMessages(await postJob(url, { ...jobC, job_id: `${jobC.job_id}-again` }));
    await blocker.all;
    const [messagesB, messagesC] = await Promise.all([batchedB, batchedC]);
    const metrics = await scrape(url);
    expect(metricValue(metrics, 'contour_worker_batch_jobs_bucket{le="2"}')).toBe(
      metricValue(metrics, 'contour_worker_batch_jobs_count'),
    );
    expect(metricValue(metrics, 'contour_worker_batch_jobs_sum')).toBe(5); // 1 + 1 + 1 + 2
    expect(messagesB.filter((m) => m.type === 'progress').map((m) => m.step)).toEqual([1, 2, 3]);
    // Same noise and conditioning per job: the batched images match the lone ones up to float reordering.
    for (const [alone, batched] of [
      [aloneB, await pixels(messagesB.at(-1))],
      [aloneC, await pixels(messagesC.at(-1), 1)],
    ] as const) {
      let worst = 0;
      for (let i = 0; i < alone.length; i++) worst = Math.max(worst, Math.abs(alone[i]! - batched[i]!));
      expect(worst).toBeLessThanOrEqual(2);
    }
    expect(Buffer.from(aloneB).equals(Buffer.from(aloneC))).toBe(false);
  });
});
