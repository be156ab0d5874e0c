/**
 * `@contour/sdk` against the real edge inside workerd (real D1/DO/R2/Queues and auth; the GPU pool is the
 * fake worker). The SDK's `fetch` is the Worker itself; faults the edge does not produce on demand (a 503
 * on the first attempt) are injected in front of it, so the retry still ends at the real edge.
 */

import {
  ApiError,
  AuthenticationError,
  Contour,
  createClientTokenHandler,
  type GenerationEvent,
  InsufficientCreditsError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ValidationError,
} from '@contour/sdk';
import { encodePng } from '@contour/shared/preprocess';
import { describe, expect, inject, it } from 'vitest';
import { createTestAccount, sharedTestAccount, worker } from './support/accounts.ts';
import { syntheticImage } from './support/images.ts';

const BASE_URL = 'http://edge.test';
const fake = inject('fakeWorkerUrl' as never) as string;
const png = encodePng(syntheticImage(96, 64));

interface Seen {
  method: string;
  path: string;
  status: number;
  headers: Headers;
  requestHeaders: Headers;
  at: number;
}

/** A fetch into the Worker that records every exchange and can replace responses (`inject`). */
function edgeFetch(inject?: (request: Request, count: number) => Response | undefined) {
  const seen: Seen[] = [];
  let count = 0;
  const fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const path = new URL(request.url).pathname;
    const injected = inject?.(request, count++);
    const response = injected ?? (await worker.fetch(request));
    seen.push({
      method: request.method,
      path,
      status: response.status,
      headers: response.headers,
      requestHeaders: request.headers,
      at: Date.now(),
    });
    return response;
  }) as typeof globalThis.fetch;
  return { fetch, seen };
}

function envelope(status: number, code: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message: `injected ${code}`, details: [] } }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

async function client(options: { fetch?: typeof fetch; apiKey?: string } = {}) {
  const apiKey = options.apiKey ?? (await sharedTestAccount()).apiKey;
  return new Contour({ apiKey, baseUrl: BASE_URL, fetch: options.fetch ?? edgeFetch().fetch });
}

const request = (steps: number) => ({
  prompt: 'a house',
  controls: [{ type: 'canny' as const, image: png }],
  steps,
  seed: 7,
  image_resolution: 256,
});

describe('generations.run and stream', () => {
  it('uploads bytes as multipart, follows the SSE stream and reports every step up to the total', async () => {
    const { fetch, seen } = edgeFetch();
    const contour = await client({ fetch });
    const progress: [number, number][] = [];
    const generation = await contour.generations.run(request(4), {
      onProgress: ({ step, total }) => progress.push([step, total]),
    });
    expect(generation.status).toBe('succeeded');
    expect(generation.outputs).toHaveLength(1);
    expect(generation.control_maps).toHaveLength(1);
    expect(progress.map(([step]) => step)).toEqual([1, 2, 3, 4, 4]);
    expect(progress.every(([, total]) => total === 4)).toBe(true);
    const create = seen.find((s) => s.method === 'POST')!;
    expect(create.requestHeaders.get('content-type')).toMatch(/^multipart\/form-data/);
    expect(create.requestHeaders.get('idempotency-key')).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen.some((s) => s.path.endsWith('/events'))).toBe(true);
  });

  it('stream() yields every event in order, one progress event per step, ending with the terminal one', async () => {
    const contour = await client();
    const created = await contour.generations.create(request(5));
    const events: GenerationEvent[] = [];
    for await (const event of contour.generations.stream(created.id)) events.push(event);
    expect(events.map((e) => e.type)).toEqual([
      'generation.queued',
      'generation.started',
      ...Array(5).fill('generation.progress'),
      'generation.succeeded',
    ]);
    const steps = events.flatMap((e) => (e.type === 'generation.progress' ? [e.step] : []));
    expect(steps).toEqual([1, 2, 3, 4, 5]);
    const sequences = events.map((e) => e.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);

    // Resuming after the third event replays only what follows it.
    const resumed: GenerationEvent[] = [];
    for await (const event of contour.generations.stream(created.id, { lastEventId: events[2]!.sequence })) {
      resumed.push(event);
    }
    expect(resumed).toEqual(events.slice(3));
  });

  it('falls back to polling when the event stream is unavailable', async () => {
    const { fetch, seen } = edgeFetch((req) =>
      new URL(req.url).pathname.endsWith('/events') ? envelope(502, 'backend_error') : undefined,
    );
    const contour = new Contour({
      apiKey: (await sharedTestAccount()).apiKey,
      baseUrl: BASE_URL,
      fetch,
      maxRetries: 0,
    });
    const steps: number[] = [];
    const generation = await contour.generations.run(request(2), {
      onProgress: ({ step }) => steps.push(step),
    });
    expect(generation.status).toBe('succeeded');
    expect(steps.at(-1)).toBe(2);
    expect(
      seen.filter((s) => s.method === 'GET' && /\/v1\/generations\/gen_\w+$/.test(s.path)).length,
    ).toBeGreaterThan(0);
  });
});

describe('retries', () => {
  it('retries a 503 with the same Idempotency-Key and succeeds once', async () => {
    const { fetch, seen } = edgeFetch((_req, count) =>
      count === 0 ? envelope(503, 'backend_unavailable') : undefined,
    );
    const contour = await client({ fetch });
    const generation = await contour.generations.create(request(1));
    expect(generation.status).toMatch(/queued|running|succeeded/);
    const posts = seen.filter((s) => s.method === 'POST');
    expect(posts.map((s) => s.status)).toEqual([503, 202]);
    expect(posts[0]!.requestHeaders.get('idempotency-key')).toBe(
      posts[1]!.requestHeaders.get('idempotency-key'),
    );
    // Backoff waited between the attempts (first retry: 500 ms minus at most 25% jitter).
    expect(posts[1]!.at - posts[0]!.at).toBeGreaterThanOrEqual(370);
  });

  it("honours the real edge's Retry-After on 429 and then succeeds", async () => {
    const account = await createTestAccount({ rate_limit: { limit: 1, period_s: 2 } });
    const { fetch, seen } = edgeFetch();
    const contour = await client({ fetch, apiKey: account.apiKey });
    await contour.billing.balance();
    const balance = await contour.billing.balance();
    expect(balance.object).toBe('balance');
    const limited = seen.find((s) => s.status === 429)!;
    const retryAfterS = Number(limited.headers.get('retry-after'));
    expect(retryAfterS).toBeGreaterThan(0);
    const retried = seen[seen.indexOf(limited) + 1]!;
    expect(retried.status).toBe(200);
    expect(retried.at - limited.at).toBeGreaterThanOrEqual(retryAfterS * 1000 - 50);
  });

  it('surfaces a Retry-After longer than it waits as a RateLimitError with retryAfter', async () => {
    const account = await createTestAccount({ rate_limit: { limit: 1, period_s: 3600 } });
    const contour = await client({ apiKey: account.apiKey });
    await contour.billing.balance();
    const error = await contour.billing.balance().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfter).toBeGreaterThan(60);
    expect((error as RateLimitError).code).toBe('rate_limited');
  });
});

describe('abort', () => {
  it('aborts a retry wait at once with the signal reason', async () => {
    const { fetch } = edgeFetch(() => envelope(429, 'rate_limited', { 'retry-after': '30' }));
    const contour = await client({ fetch });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('user gave up')), 50);
    await expect(contour.generations.get('gen_abcdefgh', { signal: controller.signal })).rejects.toThrow(
      'user gave up',
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('aborting run() stops following and cancels the generation', async () => {
    const { fetch, seen } = edgeFetch();
    const contour = await client({ fetch });
    const controller = new AbortController();
    let id = '';
    const run = contour.generations.run(request(6), {
      signal: controller.signal,
      onEvent: (event) => {
        id = event.generation_id;
        if (event.type === 'generation.queued') controller.abort(new Error('stop'));
      },
    });
    await expect(run).rejects.toThrow('stop');
    expect(seen.some((s) => s.method === 'POST' && s.path === `/v1/generations/${id}/cancel`)).toBe(true);
    const after = await contour.generations.get(id);
    // The fake worker may have finished first; otherwise the cancel stopped it.
    expect(['canceled', 'succeeded']).toContain(after.status);
  });
});

describe('typed errors', () => {
  it('ValidationError carries field errors', async () => {
    const contour = await client();
    const error = await contour.generations
      .create({ prompt: 'x', controls: [{ type: 'canny', image: png }], steps: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).status).toBe(422);
    expect((error as ValidationError).fieldErrors['steps']?.length).toBe(1);
    expect((error as ValidationError).requestId).toBeTruthy();
  });

  it('AuthenticationError, NotFoundError and InsufficientCreditsError', async () => {
    const anonymous = await client({ apiKey: 'sk_not_a_real_key' });
    await expect(anonymous.generations.get('gen_abcdefgh')).rejects.toBeInstanceOf(AuthenticationError);
    const contour = await client();
    await expect(contour.generations.get('gen_doesnotexist1')).rejects.toBeInstanceOf(NotFoundError);
    const poor = await createTestAccount({ credits: 0 });
    const error = await (await client({ apiKey: poor.apiKey })).generations
      .create(request(1))
      .catch((e) => e);
    expect(error).toBeInstanceOf(InsufficientCreditsError);
    expect((error as InsufficientCreditsError).status).toBe(402);
  });
});

describe('generations.list', () => {
  it('lists newest first with cursor pagination, and iterates over every page', async () => {
    const account = await createTestAccount();
    const contour = await client({ apiKey: account.apiKey });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await contour.generations.create(request(1))).id);
    const first = await contour.generations.list({ limit: 2 });
    expect(first.data.map((g) => g.id)).toEqual([ids[2], ids[1]]);
    expect(first.has_more).toBe(true);
    const second = await contour.generations.list({ limit: 2, cursor: first.next_cursor! });
    expect(second.data.map((g) => g.id)).toEqual([ids[0]]);
    expect(second.has_more).toBe(false);
    const all: string[] = [];
    for await (const generation of first) all.push(generation.id);
    expect(all).toEqual([...ids].reverse());
  });
});

describe('client tokens and preprocess', () => {
  it('the server helper mints a client token a browser origin can generate with', async () => {
    const { apiKey } = await sharedTestAccount();
    const handler = createClientTokenHandler({
      apiKey,
      allowedOrigins: ['https://app.example'],
      maxSpend: 10_000,
      client: { baseUrl: BASE_URL, fetch: edgeFetch().fetch },
    });
    const refused = await handler(
      new Request('https://app.example/token', {
        method: 'POST',
        headers: { origin: 'https://evil.example' },
      }),
    );
    expect(refused.status).toBe(403);
    const minted = await handler(
      new Request('https://app.example/token', {
        method: 'POST',
        headers: { origin: 'https://app.example' },
      }),
    );
    expect(minted.status).toBe(200);
    const text = await minted.text();
    expect(text).not.toContain(apiKey);
    const { token } = JSON.parse(text) as { token: string };
    expect(token).toMatch(/^ct_/);

    const browser = new Contour({
      clientToken: token,
      baseUrl: BASE_URL,
      fetch: edgeFetch().fetch,
      headers: { origin: 'https://app.example' },
    });
    const preview = await browser.preprocess({
      type: 'canny',
      image: new Blob([png]),
      image_resolution: 256,
    });
    expect(preview).toMatchObject({
      type: 'canny',
      preprocessor: 'canny',
      width: 384,
      height: 256,
      stage: 'edge',
    });
    const created = await browser.generations.create(request(1));
    expect(created.id).toMatch(/^gen_/);
    await expect(browser.generations.list()).rejects.toBeInstanceOf(PermissionDeniedError);
  });
});

describe('preprocess by name', () => {
  const client = async () =>
    new Contour({
      apiKey: (await sharedTestAccount()).apiKey,
      baseUrl: BASE_URL,
      fetch: edgeFetch().fetch,
      maxRetries: 0,
    });

  it('uploads an inpaint mask as bytes next to the image', async () => {
    const contour = await client();
    const mask = encodePng(syntheticImage(96, 64));
    const result = await contour.preprocess({
      preprocessor: 'inpaint',
      image: new Blob([png]),
      mask,
      image_resolution: 256,
    });
    expect(result).toMatchObject({ type: 'inpaint', preprocessor: 'inpaint', stage: 'edge', width: 384 });
    expect(result.keypoints).toBeUndefined();
  });

  it('runs a network preprocessor on the GPU pool: pixel-perfect detect resolution and typed keypoints back', async () => {
    const contour = await client();
    const result = await contour.preprocess({
      preprocessor: 'openpose_full',
      image: png,
      pixel_perfect: true,
      image_resolution: 256,
    });
    // 96x64 made for 384x256: round(max(256 / 64, 384 / 96) * 64) = 256.
    expect(result).toMatchObject({
      type: 'openpose',
      preprocessor: 'openpose_full',
      stage: 'worker',
      width: 384,
      height: 256,
      detect_resolution: 256,
    });
    expect(result.keypoints?.people[0]?.pose_keypoints_2d).toEqual([192, 128, 1]);
    // The worker got the detect resolution, and an input URL the edge serves to it.
    const log = (await (await fetch(`${fake}/_log`)).json()) as {
      preprocess?: { preprocessor: string; image_url: string; params: Record<string, number> };
    }[];
    const sent = log.findLast((e) => e.preprocess?.preprocessor === 'openpose_full')?.preprocess;
    expect(sent?.params).toEqual({ detect_resolution: 256 });
    const input = await worker.fetch(new Request(sent!.image_url));
    expect(input.status).toBe(200);
    expect(new Uint8Array(await input.arrayBuffer())).toEqual(png);
  });

  it("a worker without the preprocessor's weights: ApiError model_not_available naming the file", async () => {
    const contour = await client();
    const error = await contour
      .preprocess({ preprocessor: 'depth_midas', image: new Blob([png]) })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: 'model_not_available' });
    expect((error as ApiError).message).toContain('dpt_hybrid-midas-501f0c75.pt');
  });
});
