import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_QUEUES, startFakeQueues } from '../../../edge/test/support/fake-queues.ts';
import { decodeMessageBody, QueuesApiError, QueuesPullClient } from './queues-api.ts';

// The pull client against the fake of the documented Queues pull API (the same fake the edge's pull-mode
// tests use): leases, redelivery after the visibility timeout, permissive acks, retries with delay, errors.

let fake: Awaited<ReturnType<typeof startFakeQueues>>;
let client: QueuesPullClient;

async function publish(body: unknown): Promise<void> {
  const response = await fetch(
    `${fake.url}/client/v4/accounts/${FAKE_QUEUES.accountId}/queues/${FAKE_QUEUES.queueId}/messages`,
    {
      method: 'POST',
      headers: { authorization: `Bearer ${FAKE_QUEUES.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ body, content_type: 'json' }),
    },
  );
  expect(response.status).toBe(200);
}

beforeAll(async () => {
  fake = await startFakeQueues();
  client = new QueuesPullClient({
    baseUrl: `${fake.url}/client/v4`,
    accountId: FAKE_QUEUES.accountId,
    queueId: FAKE_QUEUES.queueId,
    apiToken: FAKE_QUEUES.token,
  });
});

afterAll(async () => {
  await fake.stop();
});

describe('QueuesPullClient', () => {
  it('leases, redelivers after the visibility timeout, and acks permissively', async () => {
    await fetch(`${fake.url}/_test/reset`, { method: 'POST' });
    await publish({ job: { n: 1 } });
    await publish({ job: { n: 2 } });
    const [first] = await client.pull(1, 200);
    expect(first!.attempts).toBe(1);
    expect(first!.metadata?.['CF-Content-Type']).toBe('json');
    expect(decodeMessageBody(first!)).toEqual({ job: { n: 1 } });
    const [second] = await client.pull(5, 60_000);
    expect(decodeMessageBody(second!)).toEqual({ job: { n: 2 } });
    expect(await client.pull(5, 60_000)).toEqual([]); // a short poll: nothing visible, answered at once
    await new Promise((r) => setTimeout(r, 250));
    const [again] = await client.pull(5, 60_000);
    expect(again!.id).toBe(first!.id);
    expect(again!.attempts).toBe(2);
    expect(again!.lease_id).not.toBe(first!.lease_id);
    // The expired lease still acknowledges the message; an id never issued is reported, not counted.
    const acked = await client.ack([first!.lease_id, 'not-a-lease']);
    expect(acked).toMatchObject({ ackCount: 1, retryCount: 0 });
    expect(Object.keys(acked.warnings)).toEqual(['not-a-lease']);
    // A retry with a delay hides the message for that long.
    expect((await client.ack([], [{ lease_id: second!.lease_id, delay_seconds: 1 }])).retryCount).toBe(1);
    expect(await client.pull(5, 60_000)).toEqual([]);
    await new Promise((r) => setTimeout(r, 1100));
    const [retried] = await client.pull(5, 60_000);
    expect(retried!.id).toBe(second!.id);
    expect(retried!.attempts).toBe(2);
  });

  it('turns error envelopes into QueuesApiError (auth, bad parameters)', async () => {
    const wrong = new QueuesPullClient({
      baseUrl: `${fake.url}/client/v4`,
      accountId: FAKE_QUEUES.accountId,
      queueId: FAKE_QUEUES.queueId,
      apiToken: 'wrong',
    });
    const refused = await wrong.pull(1, 1000).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(QueuesApiError);
    expect(refused).toMatchObject({ status: 401, code: 10000, transient: false });
    const missingQueue = new QueuesPullClient({
      baseUrl: `${fake.url}/client/v4`,
      accountId: FAKE_QUEUES.accountId,
      queueId: 'nope',
      apiToken: FAKE_QUEUES.token,
    });
    await expect(missingQueue.ack(['x'])).rejects.toMatchObject({ status: 404 });
    // The client clamps to the documented bounds, so a raw out-of-range pull is the fake's 400.
    const raw = await fetch(
      `${fake.url}/client/v4/accounts/${FAKE_QUEUES.accountId}/queues/${FAKE_QUEUES.queueId}/messages/pull`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${FAKE_QUEUES.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ batch_size: 101 }),
      },
    );
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ success: false, result: null });
    expect(await client.pull(500, 13 * 3600_000)).toEqual([]);
  });
});
