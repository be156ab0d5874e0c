import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { Generation, GenerationEvent } from '@contour/shared/contracts';
import { signRequest } from '@contour/shared/signing';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../src/app.ts';
import type { Bindings, QueueMessage } from '../src/env.ts';
import { generationStub } from '../src/generations/stub.ts';
import { createTestAccount, jsonPost, type TestAccount, withKey } from './support/accounts.ts';
import { FAKE_QUEUES } from './support/fake-queues.ts';
import { syntheticPngDataUrl } from './support/images.ts';

// End to end in pull mode: the real edge app (in workerd, with the real local DOs, R2 and D1), real GPU worker
// processes (`CONTOUR_MODE=pull`, built-in model) and the fake of Cloudflare's documented pull API. The
// workers call back over HTTP to the fake's relay, which hands each request to this test; the test answers
// it with the edge app, so the edge sees exactly the signed requests the worker sent.

const fake = inject('fakeQueuesUrl' as never) as string;
const app = createApp();
const image = syntheticPngDataUrl(64, 64);

/** The queue producer binding, backed by the fake's publish endpoint (`POST .../messages`). */
const pullQueue = {
  async send(body: QueueMessage, options?: { contentType?: string }) {
    const response = await fetch(
      `${fake}/client/v4/accounts/${FAKE_QUEUES.accountId}/queues/${FAKE_QUEUES.queueId}/messages`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${FAKE_QUEUES.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ body, content_type: options?.contentType ?? 'v8' }),
      },
    );
    if (!response.ok) throw new Error(`publish failed: ${response.status}`);
  },
} as unknown as Queue<QueueMessage>;

const pullEnv: Bindings = {
  ...(env as Bindings),
  DISPATCH_MODE: 'pull',
  PULL_JOBS: pullQueue,
  PUBLIC_BASE_URL: `${fake}/edge`,
};

interface Relayed {
  id: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body_base64: string;
}

interface FakeState {
  messages: { id: string; attempts: number; state: string; leased: boolean }[];
  acks: { lease_id: string; kind: 'ack' | 'retry'; counted: boolean; message_id?: string }[];
}

/** What the relay saw, and a hook to hold a callback before the edge answers it. */
const seen: { path: string; event?: string }[] = [];
let beforeAnswer: ((request: Relayed, event: { type?: string } | undefined) => Promise<void>) | undefined;
let pumping = true;
let pump: Promise<void> | undefined;

function decode(b64: string): Uint8Array {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function encode(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Answers one relayed request with the edge app. */
async function answer(request: Relayed): Promise<void> {
  const body = request.method === 'GET' ? undefined : decode(request.body_base64);
  let event: { type?: string } | undefined;
  if (request.path.endsWith('/events') && body) {
    event = (JSON.parse(new TextDecoder().decode(body)) as { event: { type: string } }).event;
  }
  seen.push({ path: request.path, event: event?.type });
  await beforeAnswer?.(request, event);
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(`http://edge.test${request.path}`, {
      method: request.method,
      headers: request.headers,
      body,
    }),
    pullEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  await fetch(`${fake}/_relay/reply/${request.id}`, {
    method: 'POST',
    body: JSON.stringify({ status: response.status, headers, body_base64: encode(bytes) }),
  });
}

async function runPump(): Promise<void> {
  while (pumping) {
    const next = await fetch(`${fake}/_relay/next`);
    if (next.status !== 200) {
      await next.body?.cancel();
      continue;
    }
    const request = (await next.json()) as Relayed;
    answer(request).catch((error: unknown) => console.error('relay answer failed', error));
  }
}

async function hook<T>(path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${fake}/_test/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await response.json()) as T;
}

/** Starts a real worker process in pull mode; returns its index for the kill/log hooks. */
async function startWorker(overrides: Record<string, string>): Promise<number> {
  return (await hook<{ index: number }>('worker/start', overrides)).index;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 90_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function createGeneration(account: TestAccount, steps: number): Promise<Generation> {
  const ctx = createExecutionContext();
  const response = await app.fetch(
    new Request(
      'http://edge.test/v1/generations',
      withKey(
        account.apiKey,
        jsonPost({ prompt: 'pulled', controls: [{ type: 'canny', image }], steps, image_resolution: 256 }),
      ),
    ),
    pullEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  expect(response.status).toBe(202);
  return (await response.json()) as Generation;
}

async function ledgerOf(generationId: string): Promise<{ kind: string; amount: number }[]> {
  const { results } = await env.DB.prepare(
    'SELECT kind, amount FROM ledger WHERE generation_id = ? ORDER BY seq',
  )
    .bind(generationId)
    .all<{ kind: string; amount: number }>();
  return results;
}

async function terminal(id: string): Promise<Generation> {
  return until(`generation ${id} to finish`, async () => {
    const generation = await generationStub(env as Bindings, id).get();
    return generation && ['succeeded', 'failed', 'canceled'].includes(generation.status)
      ? generation
      : undefined;
  });
}

/**
 * Waits for the terminal event too: the object saves the terminal status, then settles the credits and only
 * then appends the event, so a poll of the status alone can run ahead of the ledger and the event log.
 */
async function finished(id: string): Promise<Generation> {
  const generation = await terminal(id);
  await until('the terminal event', async () =>
    (await events(id)).some((e) => e.type === `generation.${generation.status}`),
  );
  return generation;
}

/** Waits until no message of the fake queue is pending (all acked). */
async function drained(): Promise<FakeState> {
  return until('the queue to drain', async () => {
    const state = await hook<FakeState>('state');
    return state.messages.every((m) => m.state === 'acked') ? state : undefined;
  });
}

async function events(id: string): Promise<GenerationEvent[]> {
  const response = await generationStub(env as Bindings, id).fetch(new Request('http://do/events'));
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('data: '))
    .map((line) => JSON.parse(line.slice(6)) as GenerationEvent);
}

let account: TestAccount;
const workers: number[] = [];

beforeAll(async () => {
  account = await createTestAccount({ credits: 100_000 });
  pump = runPump();
});

afterEach(async () => {
  // Workers left running would pull the next test's jobs.
  for (const index of workers.splice(0)) await hook(`worker/${index}/kill`, {});
  beforeAnswer = undefined;
});

afterAll(async () => {
  pumping = false;
  await pump;
});

// Real worker processes start in 5-15 s on a loaded 2-core runner: these tests get room beyond the 30 s default.
describe('pull mode end to end', { timeout: 120_000 }, () => {
  it('pulls a job, relays progress and the result, acks after the edge has it; a duplicate delivery has no effect', async () => {
    await hook('reset', {});
    const generation = await createGeneration(account, 6);
    // At-least-once delivery: the same message is handed out twice.
    await hook('duplicate', {});
    workers.push(
      await startWorker({
        CONTOUR_PULL_MAX_IN_FLIGHT: '2',
        CONTOUR_PULL_HEARTBEAT_MS: '400',
        CONTOUR_WORKER_ID: 'w1',
      }),
    );
    const done = await finished(generation.id);
    expect(done.status).toBe('succeeded');
    expect(done.outputs).toHaveLength(1);
    expect(done.cost.captured).toBe(true);
    const output = await app.fetch(
      new Request(done.outputs[0]!.url.replace(`${fake}/edge`, 'http://edge.test')),
      pullEnv,
    );
    expect(output.headers.get('content-type')).toContain('image/');
    expect(new Uint8Array(await output.arrayBuffer()).byteLength).toBeGreaterThan(50);

    const log = await events(generation.id);
    expect(log.filter((e) => e.type === 'generation.progress').length).toBeGreaterThan(0);
    expect(log.filter((e) => e.type === 'generation.started')).toHaveLength(1);
    expect(log.filter((e) => e.type === 'generation.succeeded')).toHaveLength(1);
    // Both copies end acked: one after its result, the other once the claim guard said the job was done.
    const state = await drained();
    expect(state.messages).toHaveLength(2);
    expect(state.acks.filter((a) => a.kind === 'ack' && a.counted).length).toBeGreaterThanOrEqual(2);
    expect(await ledgerOf(generation.id)).toEqual([
      { kind: 'reserve', amount: -done.cost.credits },
      { kind: 'capture', amount: 0 },
    ]);
    const resultPosts = seen.filter((s) => s.event === 'result' && s.path.includes(generation.id));
    expect(resultPosts).toHaveLength(1);
    // The worker counts it too (Prometheus): one run, both copies acked, the copy refused by the claim guard.
    const { log: lines } = await hook<{ log: string[] }>(`worker/${workers[0]}/log`);
    const port = lines.map((l) => /listening on http:\/\/[\d.]+:(\d+)/.exec(l)?.[1]).find(Boolean);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const count = (outcome: string) =>
      Number(
        new RegExp(`contour_worker_pull_deliveries_total\\{outcome="${outcome}"\\} (\\d+)`).exec(
          metrics,
        )?.[1] ?? 0,
      );
    expect(count('run')).toBe(1);
    expect(count('acked')).toBe(2);
    expect(count('deferred') + count('dropped')).toBeGreaterThanOrEqual(1);
  });

  it('a worker killed mid-job: the lease lapses, another worker takes the redelivery over, finishes once, charges once', async () => {
    await hook('reset', {});
    // Worker 1 leases for 3 s; the test kills it (SIGKILL) when its first progress report arrives.
    const doomed = await startWorker({
      CONTOUR_PULL_VISIBILITY_MS: '3000',
      CONTOUR_PULL_HEARTBEAT_MS: '300',
      CONTOUR_WORKER_ID: 'doomed',
    });
    workers.push(doomed);
    let killed = false;
    beforeAnswer = async (_request, event) => {
      if (!killed && event?.type === 'progress') {
        killed = true;
        await hook(`worker/${doomed}/kill`, {});
      }
    };
    const generation = await createGeneration(account, 6);
    await until('the first worker to be killed', async () => killed);
    beforeAnswer = undefined;
    workers.push(await startWorker({ CONTOUR_PULL_HEARTBEAT_MS: '300', CONTOUR_WORKER_ID: 'rescuer' }));
    const done = await finished(generation.id);
    expect(done.status).toBe('succeeded');
    const state = await drained();
    expect(state.messages).toHaveLength(1);
    expect(state.messages[0]!.attempts).toBe(2);
    const stored = await generationStub(env as Bindings, generation.id).getState();
    expect(stored!.attempts).toBe(2);
    expect(stored!.pull_claim!.worker_id).toBe('rescuer');
    const log = await events(generation.id);
    expect(log.filter((e) => e.type === 'generation.succeeded')).toHaveLength(1);
    expect(await ledgerOf(generation.id)).toEqual([
      { kind: 'reserve', amount: -done.cost.credits },
      { kind: 'capture', amount: 0 },
    ]);
  });

  it('a lease that lapses while its worker is alive: the redelivery defers, the first holder finishes and acks', async () => {
    await hook('reset', {});
    workers.push(
      await startWorker({
        CONTOUR_PULL_VISIBILITY_MS: '1000',
        CONTOUR_PULL_HEARTBEAT_MS: '300',
        CONTOUR_PULL_MAX_IN_FLIGHT: '2',
        CONTOUR_WORKER_ID: 'slow',
      }),
    );
    // The edge answers the first progress report late, so the job outlives its 1 s lease.
    let held = false;
    beforeAnswer = async (_request, event) => {
      if (!held && event?.type === 'progress') {
        held = true;
        await new Promise((r) => setTimeout(r, 2500));
      }
    };
    const generation = await createGeneration(account, 4);
    const done = await finished(generation.id);
    beforeAnswer = undefined;
    expect(done.status).toBe('succeeded');
    const state = await drained();
    expect(state.messages).toHaveLength(1);
    expect(state.messages[0]!.attempts).toBeGreaterThanOrEqual(2);
    // The redelivery was deferred (a retry with delay), and the message ended acked.
    expect(state.acks.some((a) => a.kind === 'retry' && a.counted)).toBe(true);
    expect(state.acks.some((a) => a.kind === 'ack' && a.counted)).toBe(true);
    const claims = seen.filter((s) => s.path === `/worker/v1/generations/${generation.id}/claim`);
    expect(claims.length).toBeGreaterThanOrEqual(2);
    expect(await ledgerOf(generation.id)).toEqual([
      { kind: 'reserve', amount: -done.cost.credits },
      { kind: 'capture', amount: 0 },
    ]);
  });
});

describe('pull mode shutdown', { timeout: 120_000 }, () => {
  it('SIGTERM mid-job: the worker stops leasing, finishes the held job, acks it and exits 0', async () => {
    await hook('reset', {});
    const index = await startWorker({ CONTOUR_PULL_HEARTBEAT_MS: '300', CONTOUR_WORKER_ID: 'draining' });
    workers.push(index);
    let termed = false;
    beforeAnswer = async (_request, event) => {
      if (!termed && event?.type === 'progress') {
        termed = true;
        await hook(`worker/${index}/term`, {});
      }
    };
    const generation = await createGeneration(account, 6);
    const done = await finished(generation.id);
    expect(termed).toBe(true);
    expect(done.status).toBe('succeeded');
    const state = await drained();
    expect(state.messages[0]!.attempts).toBe(1);
    const exit = await until('the worker to exit', async () => {
      const { exit } = await hook<{ exit: number | null }>(`worker/${index}/log`);
      return exit === null ? undefined : { code: exit };
    });
    expect(exit.code).toBe(0);
  });
});

describe('worker callbacks and metrics', () => {
  it('refuses unsigned, mis-signed and replayed callbacks', async () => {
    const generation = await createGeneration(account, 2);
    const path = `/worker/v1/generations/${generation.id}/claim`;
    const body = JSON.stringify({ job_id: 'j', worker_id: 'w', heartbeat_ms: 1000 });
    const call = (headers: Record<string, string>) =>
      app.fetch(
        new Request(`http://edge.test${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body,
        }),
        pullEnv,
        createExecutionContext(),
      );
    const unsigned = await call({});
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    const wrong = await call(await signRequest({ method: 'POST', path, body }, 'not-the-secret'));
    expect(wrong.status).toBe(401);
    const signed = await signRequest({ method: 'POST', path, body }, pullEnv.WORKER_SIGNING_SECRET);
    const first = await call(signed);
    expect(first.status).toBe(200);
    expect(((await first.json()) as { action: string }).action).toBe('run');
    const replay = await call(signed);
    expect(replay.status).toBe(409);
    // Another claim while the first holder is live is deferred.
    const second = await call(
      await signRequest({ method: 'POST', path, body }, pullEnv.WORKER_SIGNING_SECRET),
    );
    expect(await second.json()).toMatchObject({ action: 'defer' });
  });

  it('serves the backlog to KEDA only with the metrics token, per pool', async () => {
    const generation = await createGeneration(account, 2);
    const url = 'http://edge.test/worker/v1/metrics';
    const denied = await app.fetch(new Request(url, { headers: { authorization: 'Bearer nope' } }), pullEnv);
    expect(denied.status).toBe(401);
    const token = { authorization: `Bearer ${pullEnv.METRICS_TOKEN}` };
    const all = (await (await app.fetch(new Request(url, { headers: token }), pullEnv)).json()) as {
      queued: number;
      oldest_wait_s: number;
      pools: { pool: string; queued: number }[];
    };
    expect(all.queued).toBeGreaterThanOrEqual(1);
    const pool = all.pools.find((p) => p.pool.endsWith(':canny'));
    expect(pool).toBeDefined();
    const one = (await (
      await app.fetch(
        new Request(`${url}?pool=${encodeURIComponent(pool!.pool)}`, { headers: token }),
        pullEnv,
      )
    ).json()) as { queued: number; pool: string };
    expect(one.pool).toBe(pool!.pool);
    expect(one.queued).toBe(pool!.queued);
    await generationStub(env as Bindings, generation.id).cancel();
    const after = (await (
      await app.fetch(
        new Request(`${url}?pool=${encodeURIComponent(pool!.pool)}`, { headers: token }),
        pullEnv,
      )
    ).json()) as { queued: number };
    expect(after.queued).toBe(one.queued - 1);
  });
});
