import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import {
  type Balance,
  type Generation,
  GenerationRequestSchema,
  generationCost,
  type Pricing,
  type UsageReport,
} from '@contour/shared/contracts';
import { describe, expect, inject, it } from 'vitest';
import { accountStub } from '../src/accounts/object.ts';
import { dispatchJob } from '../src/dispatch/consumer.ts';
import type { Bindings } from '../src/env.ts';
import type { GenerationObject } from '../src/generations/object.ts';
import type { GenerationState } from '../src/generations/state.ts';
import { generationStub } from '../src/generations/stub.ts';
import { buildGeneration } from '../src/routes/generations/create.ts';
import {
  callEdge,
  createTestAccount,
  jsonPost,
  ledgerSum,
  type TestAccount,
  withKey,
} from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const fake = inject('fakeWorkerUrl' as never) as string;
const image = syntheticPngDataUrl(64, 64);
const bindings = env as Bindings;
const pool = (scenario: string): Bindings => ({ ...bindings, GPU_WORKERS: `${fake}/${scenario}` });

/** A billed generation created and reserved without being enqueued, so each test drives dispatch itself. */
async function createBilled(account: TestAccount, steps = 2): Promise<GenerationState> {
  const request = GenerationRequestSchema.parse({
    prompt: 'x',
    controls: [{ type: 'canny', image }],
    steps,
    width: 256,
    height: 256,
  });
  const state = await buildGeneration(request, new Map(), bindings, 'http://edge.test');
  state.billing = { account_id: account.accountId, key_id: account.keyId, client_token_id: null };
  const opened = await generationStub(bindings, state.id).open(state, null);
  if (!opened.ok) throw new Error(`reserve refused: ${JSON.stringify(opened.refusal)}`);
  return state;
}

async function ledgerOf(generationId: string): Promise<{ kind: string; amount: number }[]> {
  const { results } = await env.DB.prepare(
    'SELECT kind, amount FROM ledger WHERE generation_id = ? ORDER BY seq',
  )
    .bind(generationId)
    .all<{ kind: string; amount: number }>();
  return results;
}

async function balanceOf(account: TestAccount): Promise<Balance> {
  return (await (await callEdge('/v1/balance', withKey(account.apiKey))).json()) as Balance;
}

/** Pretends the generation was created `ageMs` ago (time control for the queued-timeout alarm). */
async function age(id: string, ageMs: number): Promise<void> {
  const stub = generationStub(bindings, id) as unknown as DurableObjectStub<GenerationObject>;
  await runInDurableObject(stub, async (_instance, ctx) => {
    const state = (await ctx.storage.get<GenerationState>('state'))!;
    await ctx.storage.put('state', { ...state, created_at: new Date(Date.now() - ageMs).toISOString() });
  });
}

describe('pricing', () => {
  it('publishes the constants and examples of generationCost', async () => {
    const pricing = (await (await callEdge('/v1/pricing')).json()) as Pricing;
    expect(pricing.examples[0]).toEqual({
      width: 512,
      height: 512,
      steps: 20,
      num_images: 1,
      control_units: 1,
      credits: 20,
    });
    for (const example of pricing.examples) expect(example.credits).toBe(generationCost(example));
  });
});

describe('reserve, capture, release', () => {
  it('402 insufficient_credits with the shortfall, and nothing is held or stored', async () => {
    const account = await createTestAccount({ credits: 5 });
    const storedImages = async () =>
      (await bindings.IMAGES.list({ prefix: 'inputs/' })).objects.length +
      (await bindings.IMAGES.list({ prefix: 'controls/' })).objects.length;
    const imagesBefore = await storedImages();
    const response = await callEdge(
      '/v1/generations',
      withKey(
        account.apiKey,
        jsonPost({
          prompt: 'x',
          controls: [{ type: 'canny', image }],
          steps: 20,
          width: 512,
          height: 512,
        }),
      ),
    );
    expect(response.status).toBe(402);
    const body = (await response.json()) as {
      error: { code: string; details: { path: string; message: string }[] };
    };
    expect(body.error.code).toBe('insufficient_credits');
    expect(body.error.details).toContainEqual({ path: 'shortfall', message: '15' });
    expect(await balanceOf(account)).toMatchObject({ available: 5, reserved: 0 });
    expect(await ledgerSum(account.accountId)).toBe(5);
    expect(await storedImages()).toBe(imagesBefore);
  });

  it('captures the cost on success: balance, ledger, usage (JSON and CSV)', async () => {
    const account = await createTestAccount({ credits: 100 });
    const state = await createBilled(account, 2);
    expect(await balanceOf(account)).toMatchObject({
      available: 100 - state.credits,
      reserved: state.credits,
    });
    expect(await dispatchJob(pool('ok'), state.job)).toEqual({ kind: 'done' });
    const done = (await generationStub(bindings, state.id).get())!;
    expect(done.status).toBe('succeeded');
    expect(done.cost).toEqual({ credits: state.credits, captured: true });
    expect(await ledgerOf(state.id)).toEqual([
      { kind: 'reserve', amount: -state.credits },
      { kind: 'capture', amount: 0 },
    ]);
    expect(await balanceOf(account)).toMatchObject({ available: 100 - state.credits, reserved: 0 });
    expect(await ledgerSum(account.accountId)).toBe(100 - state.credits);

    const usage = (await (await callEdge('/v1/usage', withKey(account.apiKey))).json()) as UsageReport;
    expect(usage).toMatchObject({ total_credits: state.credits, generations: 1 });
    expect(usage.records[0]).toMatchObject({ generation_id: state.id, steps: 2, width: 256, height: 256 });
    const csv = await callEdge('/v1/usage?format=csv', withKey(account.apiKey));
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const lines = (await csv.text()).trim().split('\r\n');
    expect(lines[0]).toBe(
      'generation_id,created_at,credits,steps,width,height,num_images,control_units,key_id',
    );
    expect(lines[1]).toContain(`${state.id},`);
    const empty = (await (
      await callEdge('/v1/usage?from=2000-01-01&to=2000-01-02', withKey(account.apiKey))
    ).json()) as UsageReport;
    expect(empty.generations).toBe(0);
  });

  it('releases the hold on worker failure, cancel and timeout', async () => {
    const account = await createTestAccount({ credits: 100 });
    const failed = await createBilled(account);
    await dispatchJob(pool('fail'), failed.job);
    expect((await generationStub(bindings, failed.id).get())!.status).toBe('failed');

    const canceled = await createBilled(account);
    const cancel = await callEdge(
      `/v1/generations/${canceled.id}/cancel`,
      withKey(account.apiKey, { method: 'POST' }),
    );
    expect(((await cancel.json()) as Generation).status).toBe('canceled');

    const timedOut = await createBilled(account);
    await age(timedOut.id, 20 * 60_000);
    expect(await runDurableObjectAlarm(generationStub(bindings, timedOut.id))).toBe(true);
    expect((await generationStub(bindings, timedOut.id).get())!.error?.code).toBe('timeout');

    for (const state of [failed, canceled, timedOut]) {
      expect(await ledgerOf(state.id)).toEqual([
        { kind: 'reserve', amount: -state.credits },
        { kind: 'release', amount: state.credits },
      ]);
    }
    expect(await balanceOf(account)).toMatchObject({ available: 100, reserved: 0 });
    expect(await ledgerSum(account.accountId)).toBe(100);
  });

  it('another account cannot see or cancel a generation', async () => {
    const owner = await createTestAccount({ credits: 100 });
    const other = await createTestAccount({ credits: 100 });
    const state = await createBilled(owner);
    expect((await callEdge(`/v1/generations/${state.id}`, withKey(other.apiKey))).status).toBe(404);
    expect(
      (await callEdge(`/v1/generations/${state.id}/cancel`, withKey(other.apiKey, { method: 'POST' })))
        .status,
    ).toBe(404);
    expect((await callEdge(`/v1/generations/${state.id}`, withKey(owner.apiKey))).status).toBe(200);
    await generationStub(bindings, state.id).cancel();
  });

  it('a randomized run with injected failures keeps balance == sum(ledger), each generation captured xor released', async () => {
    const account = await createTestAccount({ credits: 10_000 });
    // Deterministic pseudo-random sequence (mulberry32) so a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const actions = ['ok', 'fail', 'cancel', 'timeout', 'cancel-racing-ok'] as const;
    const states: GenerationState[] = [];
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        const state = await createBilled(account, 1 + Math.floor(random() * 3));
        states.push(state);
        const action = actions[Math.floor(random() * actions.length)]!;
        const stub = generationStub(bindings, state.id);
        if (action === 'ok' || action === 'fail') await dispatchJob(pool(action), state.job);
        else if (action === 'cancel') await stub.cancel();
        else if (action === 'timeout') {
          await age(state.id, 20 * 60_000);
          await runDurableObjectAlarm(stub);
        } else await Promise.all([dispatchJob(pool('ok'), state.job), stub.cancel()]);
      }),
    );
    let charged = 0;
    for (const state of states) {
      const generation = (await generationStub(bindings, state.id).get())!;
      expect(['succeeded', 'failed', 'canceled']).toContain(generation.status);
      const kinds = (await ledgerOf(state.id)).map((e) => e.kind);
      expect(kinds[0]).toBe('reserve');
      expect(kinds).toHaveLength(2);
      expect(kinds[1]).toBe(generation.status === 'succeeded' ? 'capture' : 'release');
      expect(await accountStub(bindings, account.accountId).holdStatus(state.id)).toBe(
        generation.status === 'succeeded' ? 'captured' : 'released',
      );
      if (generation.status === 'succeeded') charged += generation.cost.credits;
    }
    const balance = await balanceOf(account);
    expect(balance).toMatchObject({ available: 10_000 - charged, reserved: 0 });
    expect(await ledgerSum(account.accountId)).toBe(balance.available);
  });
});
