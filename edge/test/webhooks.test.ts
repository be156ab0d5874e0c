import { runDurableObjectAlarm } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import type { Generation, WebhookDelivery, WebhookPayload } from '@contour/shared/contracts';
import { verifyWebhook, WebhookVerificationError } from '@contour/shared/webhooks';
import { describe, expect, it } from 'vitest';
import type { Bindings } from '../src/env.ts';
import { deliveryStub, WEBHOOK_RETRY_SCHEDULE_MS } from '../src/webhooks/object.ts';
import { callEdge, createTestAccount, jsonPost, type TestAccount, withKey } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';
import type { ReceivedWebhook } from './support/webhook-receiver.ts';

const image = syntheticPngDataUrl(64, 64);
const receiver = env.TEST_WEBHOOK_RECEIVER;

async function inbox(name: string): Promise<ReceivedWebhook[]> {
  return (await (await fetch(`${receiver}/_inbox/${name}`)).json()) as ReceivedWebhook[];
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function deliveries(account: TestAccount): Promise<WebhookDelivery[]> {
  const response = await callEdge('/v1/webhooks/deliveries', withKey(account.apiKey));
  return ((await response.json()) as { data: WebhookDelivery[] }).data;
}

async function generate(account: TestAccount, webhook?: string): Promise<Generation> {
  const response = await callEdge(
    '/v1/generations',
    withKey(
      account.apiKey,
      jsonPost({
        prompt: 'x',
        controls: [{ type: 'canny', image }],
        steps: 1,
        width: 256,
        height: 256,
        webhook,
      }),
    ),
  );
  expect(response.status).toBe(202);
  return (await response.json()) as Generation;
}

describe('customer webhooks', () => {
  it('retries a receiver that fails twice; exactly one accepted delivery, every attempt signed', async () => {
    expect(WEBHOOK_RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(24 * 3600_000);
    const account = await createTestAccount();
    const box = `flaky-${crypto.randomUUID()}`;
    const created = await generate(account, `${receiver}/flaky2/${box}`);
    // The first attempt runs from the delivery's alarm once the generation finishes.
    const [first] = await until(
      () => deliveries(account),
      (list) => list[0]?.attempts === 1,
    );
    expect(first).toMatchObject({
      generation_id: created.id,
      status: 'pending',
      attempts: 1,
      last_status_code: 500,
    });
    // Time control: run the retries now instead of after 5 s and 5 min.
    const stub = deliveryStub(env as Bindings, first!.id);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runDurableObjectAlarm(stub)).toBe(false);

    const received = await inbox(box);
    expect(received.map((r) => r.answered)).toEqual([500, 500, 200]);
    expect(new Set(received.map((r) => r.headers['webhook-id']))).toEqual(new Set([first!.id]));
    for (const attempt of received) {
      const payload = await verifyWebhook<WebhookPayload>(
        attempt.headers,
        attempt.body,
        account.webhookSecret,
      );
      expect(payload.type).toBe('generation.succeeded');
      expect(payload.data.id).toBe(created.id);
    }
    await expect(
      verifyWebhook(
        received[0]!.headers,
        received[0]!.body.replace('succeeded', 'failed'),
        account.webhookSecret,
      ),
    ).rejects.toBeInstanceOf(WebhookVerificationError);
    const [logged] = await deliveries(account);
    expect(logged).toMatchObject({
      status: 'succeeded',
      attempts: 3,
      last_status_code: 200,
      next_attempt_at: null,
    });

    // Manual redelivery sends the same message again.
    const redeliver = await callEdge(
      `/v1/webhooks/deliveries/${first!.id}/redeliver`,
      withKey(account.apiKey, { method: 'POST' }),
    );
    expect(redeliver.status).toBe(202);
    const after = await until(
      () => inbox(box),
      (list) => list.length === 4,
    );
    expect(after[3]).toMatchObject({ answered: 200, headers: { 'webhook-id': first!.id } });
  });

  it('gives up after the schedule and logs a failed delivery; account endpoints get events with their own secret', async () => {
    const account = await createTestAccount();
    const box = `endpoint-${crypto.randomUUID()}`;
    const endpoint = await callEdge(
      '/v1/webhooks/endpoints',
      withKey(account.apiKey, jsonPost({ url: `${receiver}/ok/${box}` })),
    );
    expect(endpoint.status).toBe(201);
    const { secret } = (await endpoint.json()) as { secret: string };
    const created = await generate(account);
    const received = await until(
      () => inbox(box),
      (list) => list.length === 1,
    );
    const payload = await verifyWebhook<WebhookPayload>(received[0]!.headers, received[0]!.body, secret);
    expect(payload.data.id).toBe(created.id);
    await expect(
      verifyWebhook(received[0]!.headers, received[0]!.body, account.webhookSecret),
    ).rejects.toThrow();

    const failing = await createTestAccount();
    const deadBox = `dead-${crypto.randomUUID()}`;
    await generate(failing, `${receiver}/fail/${deadBox}`);
    const [first] = await until(
      () => deliveries(failing),
      (list) => list[0]?.attempts === 1,
    );
    const stub = deliveryStub(env as Bindings, first!.id);
    while (await runDurableObjectAlarm(stub));
    const [logged] = await deliveries(failing);
    expect(logged).toMatchObject({ status: 'failed', attempts: WEBHOOK_RETRY_SCHEDULE_MS.length });
    expect(await inbox(deadBox)).toHaveLength(WEBHOOK_RETRY_SCHEDULE_MS.length);
  });
});
