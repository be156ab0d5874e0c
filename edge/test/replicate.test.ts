import { env, exports } from 'cloudflare:workers';
import { GenerationRequestSchema, type WorkerJob } from '@contour/shared/contracts';
import { decodeImage } from '@contour/shared/preprocess';
import { describe, expect, inject, it } from 'vitest';
import { dispatchJob } from '../src/dispatch/consumer.ts';
import { resetPoolState } from '../src/dispatch/pool.ts';
import {
  backoffFetch,
  REPLICATE_MAX_ATTEMPTS,
  ReplicateUnavailableError,
  replicateCall,
} from '../src/dispatch/replicate.ts';
import type { Bindings } from '../src/env.ts';
import type { GenerationState } from '../src/generations/state.ts';
import { generationStub } from '../src/generations/stub.ts';
import { buildGeneration } from '../src/routes/generations/create.ts';
import { syntheticPngDataUrl } from './support/images.ts';
import { FAKE_REPLICATE_WEBHOOK_SECRET } from './support/replicate-constants.ts';

const worker = (exports as unknown as { default: { fetch(request: Request): Promise<Response> } }).default;
const fakeReplicate = inject('fakeReplicateUrl' as never) as string;
const fakeGpu = inject('fakeWorkerUrl' as never) as string;
const image = syntheticPngDataUrl(64, 64);

async function createUnqueued(prompt = 'a house', extra: object = {}): Promise<GenerationState> {
  const request = GenerationRequestSchema.parse({
    prompt,
    controls: [{ type: 'canny', image, params: { low: 50, high: 150 } }],
    steps: 10,
    image_resolution: 512,
    ...extra,
  });
  const state = await buildGeneration(request, new Map(), env as Bindings, 'http://edge.test');
  await generationStub(env as Bindings, state.id).initialize(state);
  return state;
}

/** Signs a webhook the way Replicate does (Standard Webhooks), computed independently with WebCrypto. */
async function signedWebhook(
  generationId: string,
  body: string,
  options: { id?: string; timestamp?: number; secret?: string } = {},
) {
  const id = options.id ?? `msg_${crypto.randomUUID()}`;
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const secret = options.secret ?? FAKE_REPLICATE_WEBHOOK_SECRET;
  const keyBytes = Uint8Array.from(atob(secret.split('_').pop()!), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const mac = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  const signature = btoa(String.fromCharCode(...new Uint8Array(mac)));
  return worker.fetch(
    new Request(`http://edge.test/v1/webhooks/replicate?generation=${generationId}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${signature}`,
      },
      body,
    }),
  );
}

async function predictions(): Promise<{ id: string; model: string; input: Record<string, unknown> }[]> {
  return (await (await fetch(`${fakeReplicate}/_predictions`)).json()) as never;
}

const replicateEnv = (backend = 'replicate', pool = ''): Bindings => ({
  ...(env as Bindings),
  DISPATCH_BACKEND: backend,
  GPU_WORKERS: pool,
});

describe('Replicate mapping', () => {
  it('maps a canny job to jagilley/controlnet-canny with the original image and thresholds', async () => {
    const state = await createUnqueued();
    const call = replicateCall(state.job);
    if (typeof call === 'string') throw new Error(call);
    expect(call.model).toBe('jagilley/controlnet-canny');
    expect(call.input).toMatchObject({
      image: state.job.controls[0]!.source!.url,
      prompt: 'a house, best quality, extremely detailed',
      a_prompt: '',
      num_samples: '1',
      image_resolution: '512',
      ddim_steps: 10,
      scale: 9,
      low_threshold: 50,
      high_threshold: 150,
      seed: state.seed,
    });
    expect(call.firstImage).toBe(1);
  });

  it('refuses what Replicate models cannot do', () => {
    const job = { controls: [{}, {}], guess_mode: false } as unknown as WorkerJob;
    expect(replicateCall(job)).toMatch(/exactly one control unit/);
    const unipc = { controls: [{}], guess_mode: false, scheduler: 'unipc' } as unknown as WorkerJob;
    expect(replicateCall(unipc)).toMatch(/ddim only, not unipc/);
  });
});

describe('backoffFetch (our retry policy for the replicate client)', () => {
  it('retries 429 honouring Retry-After, then succeeds', async () => {
    const calls: number[] = [];
    const flaky = (async () => {
      calls.push(Date.now());
      return calls.length === 1
        ? new Response('{}', { status: 429, headers: { 'retry-after': '1' } })
        : new Response('{"ok":true}', { status: 200 });
    }) as typeof fetch;
    const response = await backoffFetch(flaky)('http://x/');
    expect(response.status).toBe(200);
    expect(calls).toHaveLength(2);
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the named number of attempts and then fails fast', async () => {
    let count = 0;
    const down = (async () => {
      count++;
      return new Response('{}', { status: 503, headers: { 'retry-after': '0' } });
    }) as typeof fetch;
    const guarded = backoffFetch(down);
    await expect(guarded('http://x/')).rejects.toBeInstanceOf(ReplicateUnavailableError);
    expect(count).toBe(REPLICATE_MAX_ATTEMPTS);
    await expect(guarded('http://x/')).rejects.toBeInstanceOf(ReplicateUnavailableError);
    expect(count).toBe(REPLICATE_MAX_ATTEMPTS);
  });
});

describe('Replicate backend end to end (fake Replicate API, real queue consumer code, R2, DO)', () => {
  it('creates a prediction, accepts its signed webhooks, copies outputs into R2 and succeeds', async () => {
    const state = await createUnqueued();
    expect(await dispatchJob(replicateEnv(), state.job)).toEqual({ kind: 'done' });
    const prediction = (await predictions()).find(
      (p) => p.input['seed'] === state.seed && p.input['prompt'] === state.job.prompt,
    )!;
    expect(prediction.model).toBe('jagilley/controlnet-canny');
    const stub = generationStub(env as Bindings, state.id);
    expect((await stub.getState())!.replicate).toMatchObject({ prediction_id: prediction.id });
    expect((await stub.get())!.status).toBe('running');

    const start = JSON.stringify({ id: prediction.id, status: 'processing', output: null });
    expect((await signedWebhook(state.id, start)).status).toBe(200);
    const done = JSON.stringify({
      id: prediction.id,
      status: 'succeeded',
      output: [
        `${fakeReplicate}/files/${prediction.id}/0.png`,
        `${fakeReplicate}/files/${prediction.id}/1.png`,
      ],
    });
    const doneId = 'msg_done_1';
    expect((await signedWebhook(state.id, done, { id: doneId })).status).toBe(200);
    const generation = (await stub.get())!;
    expect(generation.status).toBe('succeeded');
    expect(generation.outputs).toHaveLength(1);
    // The output is ours now: served from R2, with the pixels Replicate returned (file 1, not the control map).
    const stored = await worker.fetch(new Request(generation.outputs[0]!.url));
    const pixels = await decodeImage(new Uint8Array(await stored.arrayBuffer()));
    expect(pixels.data[0]).toBe(70);

    // Replicate retries deliveries: the same webhook id is acknowledged without effect.
    const again = await signedWebhook(state.id, done, { id: doneId });
    expect(await again.json()).toEqual({ received: true, duplicate: true });
  });

  it('rejects forged, stale and unsigned webhooks with 401', async () => {
    const state = await createUnqueued('forgery check');
    await dispatchJob(replicateEnv(), state.job);
    const body = JSON.stringify({ id: 'whatever', status: 'succeeded', output: [] });
    const forged = await signedWebhook(state.id, body, {
      secret: `whsec_${btoa('not-the-real-key-0000000000000000')}`,
    });
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    const stale = await signedWebhook(state.id, body, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(stale.status).toBe(401);
    const unsigned = await worker.fetch(
      new Request(`http://edge.test/v1/webhooks/replicate?generation=${state.id}`, { method: 'POST', body }),
    );
    expect(unsigned.status).toBe(401);
    expect((await generationStub(env as Bindings, state.id).get())!.status).toBe('running');
  });

  it('marks the generation failed when the prediction fails', async () => {
    const state = await createUnqueued('will fail');
    await dispatchJob(replicateEnv(), state.job);
    const prediction = (await predictions()).find((p) => p.input['prompt'] === state.job.prompt)!;
    const failed = JSON.stringify({
      id: prediction.id,
      status: 'failed',
      output: null,
      error: 'CUDA out of memory',
    });
    expect((await signedWebhook(state.id, failed)).status).toBe(200);
    expect(await generationStub(env as Bindings, state.id).get()).toMatchObject({
      status: 'failed',
      error: { code: 'backend_error' },
      cost: { captured: false },
    });
  });

  it('overflows to Replicate when the GPU pool is busy, and rides out a 429 with Retry-After', async () => {
    resetPoolState();
    const state = await createUnqueued('overflow [ratelimit]');
    const started = Date.now();
    expect(await dispatchJob(replicateEnv('gpu+replicate', `${fakeGpu}/busy`), state.job)).toEqual({
      kind: 'done',
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect((await predictions()).some((p) => p.input['prompt'] === state.job.prompt)).toBe(true);
    expect((await generationStub(env as Bindings, state.id).getState())!.replicate).toBeTruthy();
  });
});
