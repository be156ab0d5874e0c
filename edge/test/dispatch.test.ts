import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { GenerationRequestSchema } from '@contour/shared/contracts';
import { beforeEach, describe, expect, inject, it } from 'vitest';
import { consumeDeadLetters, consumeJobs, dispatchJob, retryDelaySeconds } from '../src/dispatch/consumer.ts';
import { resetPoolState, workerOrder } from '../src/dispatch/pool.ts';
import type { Bindings, QueueMessage } from '../src/env.ts';
import { MAX_STUCK_RETRIES } from '../src/generations/object.ts';
import type { GenerationState } from '../src/generations/state.ts';
import { generationStub } from '../src/generations/stub.ts';
import { buildGeneration } from '../src/routes/generations/create.ts';
import { authedCall } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const fake = inject('fakeWorkerUrl' as never) as string;
const image = syntheticPngDataUrl(64, 64);

/** Creates a generation's state and object without enqueueing it, so each test drives dispatch itself. */
async function createUnqueued(steps = 3, scheduler?: string): Promise<GenerationState> {
  const request = GenerationRequestSchema.parse({
    prompt: 'x',
    controls: [{ type: 'canny', image }],
    steps,
    scheduler,
    image_resolution: 256,
  });
  const state = await buildGeneration(request, new Map(), env as Bindings, 'http://edge.test');
  await generationStub(env as Bindings, state.id).initialize(state);
  return state;
}

const withPool = (...scenarios: string[]): Bindings => ({
  ...(env as Bindings),
  GPU_WORKERS: scenarios.map((s) => `${fake}/${s}`).join(','),
});

async function fakeLog(): Promise<
  { scenario: string; method: string; verified: boolean; job_id?: string; path: string }[]
> {
  return (await (await fetch(`${fake}/_log`)).json()) as never;
}

beforeEach(() => resetPoolState());

describe('dispatch to the GPU pool', () => {
  it('skips a busy worker (429) and a down worker (500), runs on a healthy one, with signed requests', async () => {
    const pool = withPool('busy', 'down', 'ok');
    const first = await createUnqueued();
    expect(await dispatchJob(pool, first.job)).toEqual({ kind: 'done' });
    expect(await generationStub(env as Bindings, first.id).get()).toMatchObject({
      status: 'succeeded',
      progress: { step: 3, total: 3 },
    });
    const firstTries = (await fakeLog()).filter((e) => e.job_id === first.id);
    expect(firstTries.at(-1)!.scenario).toBe('ok');
    expect(firstTries.every((e) => e.verified)).toBe(true);
    // Whatever was tried first is now skipped (busy for its Retry-After, down for the cooldown).
    const second = await createUnqueued();
    await dispatchJob(withPool('busy', 'down'), second.job);
    await dispatchJob(pool, second.job);
    const secondTries = (await fakeLog()).filter((e) => e.job_id === second.id).map((e) => e.scenario);
    expect(secondTries.sort()).toEqual(['busy', 'down', 'ok']);
    expect(workerOrder([`${fake}/busy`, `${fake}/down`, `${fake}/ok`]).at(0)).toBe(`${fake}/ok`);
  });

  it('passes the sampler through to the worker job, billed per step like ddim', async () => {
    const ddim = await createUnqueued(20);
    const unipc = await createUnqueued(8, 'unipc');
    expect(ddim.job.scheduler).toBe('ddim');
    expect(unipc.job).toMatchObject({ scheduler: 'unipc', steps: 8 });
    expect(unipc.credits).toBeLessThan(ddim.credits);
    expect(unipc.credits).toBeCloseTo((ddim.credits * 8) / 20, 0);
    // The fake worker parses the job with the shared WorkerJob schema before running it.
    expect(await dispatchJob(withPool('ok'), unipc.job)).toEqual({ kind: 'done' });
    expect(await generationStub(env as Bindings, unipc.id).get()).toMatchObject({
      status: 'succeeded',
      progress: { step: 8, total: 8 },
    });
  });

  it('asks the queue to retry with backoff when every worker is busy', async () => {
    const state = await createUnqueued();
    const batch = createMessageBatch<QueueMessage>('contour-jobs', [
      { id: 'm1', timestamp: new Date(), attempts: 2, body: { job: state.job } },
    ]);
    const ctx = createExecutionContext();
    await consumeJobs(batch, withPool('busy', 'down'));
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    // (workerd's test harness does not report the delay; retryDelaySeconds is tested below)
    expect(result.retryMessages.map((m) => m.msgId)).toEqual(['m1']);
    expect((await generationStub(env as Bindings, state.id).get())!.status).toBe('queued');
  });

  it('backs off exponentially with a cap', () => {
    expect(retryDelaySeconds(1)).toBeGreaterThanOrEqual(5);
    expect(retryDelaySeconds(1)).toBeLessThanOrEqual(6);
    expect(retryDelaySeconds(3)).toBeGreaterThanOrEqual(20);
    expect(retryDelaySeconds(30)).toBeLessThanOrEqual(360);
  });

  it('fails the generation on a non-retryable worker error, and retries a cut stream', async () => {
    const failing = await createUnqueued();
    expect(await dispatchJob(withPool('fail'), failing.job)).toEqual({ kind: 'done' });
    const failed = await generationStub(env as Bindings, failing.id).get();
    expect(failed).toMatchObject({
      status: 'failed',
      error: { code: 'backend_error', message: 'out of memory' },
    });
    expect(failed!.cost.captured).toBe(false);

    const cut = await createUnqueued();
    expect((await dispatchJob(withPool('cut'), cut.job)).kind).toBe('retry');
    expect((await generationStub(env as Bindings, cut.id).get())!.status).toBe('running');
  });

  it('dead-lettered jobs fail with backend_unavailable', async () => {
    const state = await createUnqueued();
    const batch = createMessageBatch<QueueMessage>('contour-jobs-dlq', [
      { id: 'd1', timestamp: new Date(), attempts: 5, body: { job: state.job } },
    ]);
    const ctx = createExecutionContext();
    await consumeDeadLetters(batch, env as Bindings);
    expect((await getQueueResult(batch, ctx)).explicitAcks).toEqual(['d1']);
    expect(await generationStub(env as Bindings, state.id).get()).toMatchObject({
      status: 'failed',
      error: { code: 'backend_unavailable', retryable: true },
    });
  });

  it('cancel mid-run stops the worker (signed DELETE) and keeps the generation canceled', async () => {
    const state = await createUnqueued(20);
    const stub = generationStub(env as Bindings, state.id);
    const running = dispatchJob(withPool('slow'), state.job);
    for (let i = 0; i < 100 && (await stub.get())!.progress.step < 2; i++)
      await new Promise((r) => setTimeout(r, 50));
    const response = await authedCall(`/v1/generations/${state.id}/cancel`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(await running).toEqual({ kind: 'done' });
    const generation = await stub.get();
    expect(generation!.status).toBe('canceled');
    expect(generation!.outputs).toEqual([]);
    expect(generation!.progress.step).toBeLessThan(20);
    const deletes = (await fakeLog()).filter(
      (e) => e.method === 'DELETE' && e.path === `/v1/jobs/${state.id}`,
    );
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.verified).toBe(true);
  });

  it('does not dispatch a generation canceled while queued', async () => {
    const state = await createUnqueued();
    await generationStub(env as Bindings, state.id).cancel();
    expect(await dispatchJob(withPool('ok'), state.job)).toEqual({ kind: 'done' });
    expect((await fakeLog()).filter((e) => e.job_id === state.id)).toEqual([]);
  });
});

describe('stuck-job alarm', () => {
  /** Makes the stored state look silent for 10 minutes. */
  const stall = (stub: ReturnType<typeof generationStub>) =>
    runInDurableObject(stub, async (_instance, objectState) => {
      const stored = (await objectState.storage.get<GenerationState>('state'))!;
      stored.last_activity_ms = Date.now() - 10 * 60_000;
      await objectState.storage.put('state', stored);
    });

  it('re-enqueues a stalled running job, which the queue then runs to completion', async () => {
    const state = await createUnqueued();
    const stub = generationStub(env as Bindings, state.id);
    expect(await stub.markStarted()).toBe(true);
    await stall(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_i, s) => s.storage.get<number>('stuck_retries'))).toBe(1);
    expect((await stub.getState())!.job).toMatchObject({ job_id: `${state.id}_r1`, attempt: 2 });
    // The real queue delivers the re-enqueued job to the consumer, which runs it on the (fake) pool.
    for (let i = 0; i < 100 && (await stub.get())!.status !== 'succeeded'; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect((await stub.get())!.status).toBe('succeeded');
  });

  it('fails a stalled job with a retryable timeout once its retries are spent', async () => {
    const state = await createUnqueued();
    const stub = generationStub(env as Bindings, state.id);
    expect(await stub.markStarted()).toBe(true);
    await runInDurableObject(stub, (_i, s) => s.storage.put('stuck_retries', MAX_STUCK_RETRIES));
    await stall(stub);
    await runDurableObjectAlarm(stub);
    expect(await stub.get()).toMatchObject({ status: 'failed', error: { code: 'timeout', retryable: true } });
  });

  it('fails a job that no worker picks up in time', async () => {
    const state = await createUnqueued();
    const stub = generationStub(env as Bindings, state.id);
    await runInDurableObject(stub, async (_instance, objectState) => {
      const stored = (await objectState.storage.get<GenerationState>('state'))!;
      stored.created_at = new Date(Date.now() - 60 * 60_000).toISOString();
      await objectState.storage.put('state', stored);
    });
    await runDurableObjectAlarm(stub);
    expect(await stub.get()).toMatchObject({ status: 'failed', error: { code: 'timeout' } });
  });
});
