import { env } from 'cloudflare:workers';
import type { Generation } from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import { callEdge, createTestAccount, ledgerSum, withKey } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const image = syntheticPngDataUrl(64, 64);
const post = (apiKey: string, key: string, body: unknown) =>
  callEdge(
    '/v1/generations',
    withKey(apiKey, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    }),
  );

describe('Idempotency-Key', () => {
  it('50 concurrent identical requests make one generation and one charge', async () => {
    const account = await createTestAccount({ credits: 1000 });
    const body = { prompt: 'x', controls: [{ type: 'canny', image }], steps: 1, width: 256, height: 256 };
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => post(account.apiKey, 'same-key', body)),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(202));
    const ids = new Set(await Promise.all(responses.map(async (r) => ((await r.json()) as Generation).id)));
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(49);
    const { results } = await env.DB.prepare(
      "SELECT generation_id FROM ledger WHERE account_id = ? AND kind = 'reserve'",
    )
      .bind(account.accountId)
      .all<{ generation_id: string }>();
    expect(results.map((r) => r.generation_id)).toEqual([...ids]);
    expect(await ledgerSum(account.accountId)).toBe(999);
  });

  it('replays the first response (errors too), 422 for the same key with another body', async () => {
    const account = await createTestAccount({ credits: 1000 });
    const body = { prompt: 'x', controls: [{ type: 'canny', image }], steps: 1, width: 256, height: 256 };
    const first = await post(account.apiKey, 'k1', body);
    const again = await post(account.apiKey, 'k1', body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    const created = (await first.json()) as Generation;
    expect(await again.json()).toEqual(created);

    const mismatch = await post(account.apiKey, 'k1', { ...body, prompt: 'y' });
    expect(mismatch.status).toBe(422);
    expect(((await mismatch.json()) as { error: { code: string } }).error.code).toBe('idempotency_mismatch');

    const invalid = await post(account.apiKey, 'k2', { prompt: '' });
    const invalidAgain = await post(account.apiKey, 'k2', { prompt: '' });
    expect([invalid.status, invalidAgain.status]).toEqual([422, 422]);
    expect(invalidAgain.headers.get('idempotent-replayed')).toBe('true');

    // Keys are per account: another account's same key is a new request.
    const other = await createTestAccount({ credits: 1000 });
    const fresh = await post(other.apiKey, 'k1', body);
    expect(fresh.headers.get('idempotent-replayed')).toBeNull();
    expect(((await fresh.json()) as Generation).id).not.toBe(created.id);
  });
});
