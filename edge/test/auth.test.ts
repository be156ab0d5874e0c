import { env } from 'cloudflare:workers';
import type { ClientToken, Generation } from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import type { Bindings } from '../src/env.ts';
import { decideRateLimit } from '../src/ratelimit/middleware.ts';
import { admin, callEdge, createTestAccount, jsonPost, withKey } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const image = syntheticPngDataUrl(64, 64);
const request = { prompt: 'x', controls: [{ type: 'canny', image }], steps: 1, width: 256, height: 256 };
const generate = (token: string, headers: Record<string, string> = {}) =>
  callEdge(
    '/v1/generations',
    withKey(token, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(request),
    }),
  );
const codeOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string } }).error.code;

describe('secret keys', () => {
  it('401 for a missing, malformed, unknown or revoked key; 403 for a missing scope', async () => {
    const account = await createTestAccount();
    const missing = await callEdge('/v1/balance');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(await codeOf(missing)).toBe('unauthenticated');
    expect((await callEdge('/v1/balance', withKey('nonsense'))).status).toBe(401);
    expect((await callEdge('/v1/balance', withKey(`${account.apiKey.slice(0, -1)}x`))).status).toBe(401);
    expect((await callEdge('/v1/balance', withKey(account.apiKey))).status).toBe(200);

    await admin(`/keys/${account.keyId}/revoke`);
    const revoked = await callEdge('/v1/balance', withKey(account.apiKey));
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: { message: string } }).error.message).toContain('revoked');

    const readOnly = await createTestAccount({ scopes: ['generations:read'] });
    const refused = await generate(readOnly.apiKey);
    expect(refused.status).toBe(403);
    expect(await codeOf(refused)).toBe('forbidden');
  });

  it('stores only a hash and a prefix, and records last use', async () => {
    const account = await createTestAccount();
    await callEdge('/v1/balance', withKey(account.apiKey));
    const row = await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?')
      .bind(account.keyId)
      .first<Record<string, unknown>>();
    expect(Object.values(row!)).not.toContain(account.apiKey);
    expect(row!.prefix).toBe(account.apiKey.slice(0, 11));
    expect(row!.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row!.last_used_at).not.toBeNull();
  });

  it('the admin API needs the admin secret', async () => {
    const post = (authorization?: string) =>
      callEdge('/v1/admin/accounts', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ name: 'x' }),
      });
    expect((await post()).status).toBe(401);
    expect((await post('Bearer wrong')).status).toBe(401);
    const account = await createTestAccount();
    expect((await post(`Bearer ${account.apiKey}`)).status).toBe(401);
    expect((await post('Bearer local-dev-admin-secret')).status).toBe(201);
  });

  it('bootstrap prepares the dev account idempotently with a given key', async () => {
    const key = 'sk_local_dev_0123456789abcdef';
    const first = await admin<{ api_key: string; available: number }>('/bootstrap', {
      api_key: key,
      credits: 500,
    });
    const second = await admin<{ api_key: string; available: number }>('/bootstrap', {
      api_key: key,
      credits: 500,
    });
    expect(first).toMatchObject({ api_key: key, available: 500 });
    expect(second).toMatchObject({ api_key: key, available: 500 });
    expect((await callEdge('/v1/balance', withKey(key))).status).toBe(200);
  });
});

describe('client tokens', () => {
  async function mint(apiKey: string, body: Record<string, unknown>): Promise<ClientToken> {
    const response = await callEdge('/v1/client-tokens', withKey(apiKey, jsonPost(body)));
    expect(response.status).toBe(201);
    return (await response.json()) as ClientToken;
  }

  it('work from their origin only, within their spend; expired ones are 401', async () => {
    const account = await createTestAccount();
    const origin = 'https://app.example';
    // One 256x256 step costs 1 credit: room for exactly two generations.
    const token = await mint(account.apiKey, { origin, max_spend: 2, max_generations: 10 });
    expect(token.token).toMatch(/^ct_/);
    expect((await generate(token.token, { origin })).status).toBe(202);
    const wrongOrigin = await generate(token.token, { origin: 'https://evil.example' });
    expect(wrongOrigin.status).toBe(403);
    expect((await generate(token.token)).status).toBe(403);
    const second = (await (await generate(token.token, { origin })).json()) as Generation;
    const over = await generate(token.token, { origin });
    expect(over.status).toBe(403);
    expect(((await over.json()) as { error: { message: string } }).error.message).toContain('max_spend');
    // A released hold gives its spend back.
    await callEdge(
      `/v1/generations/${second.id}/cancel`,
      withKey(token.token, { method: 'POST', headers: { origin } }),
    );
    // Cancel may race with completion; either way the token may spend again only if it was released.
    const after = (await (
      await callEdge(`/v1/generations/${second.id}`, withKey(account.apiKey))
    ).json()) as Generation;
    expect((await generate(token.token, { origin })).status).toBe(after.status === 'canceled' ? 202 : 403);
    // Client tokens cannot do what only the server may.
    expect((await callEdge('/v1/balance', withKey(token.token, { headers: { origin } }))).status).toBe(403);
    expect((await mint(account.apiKey, { origin, max_spend: 1 })).max_generations).toBe(100);

    await env.DB.prepare('UPDATE client_tokens SET expires_at = ? WHERE id = ?')
      .bind(Date.now() - 1, token.id)
      .run();
    const expired = await generate(token.token, { origin });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toContain('expired');
  });

  it('authenticate the events stream as ?access_token= (EventSource sends no headers), never a secret key', async () => {
    const account = await createTestAccount();
    const origin = 'https://app.example';
    const token = await mint(account.apiKey, { origin, max_spend: 100 });
    const created = (await (await generate(token.token, { origin })).json()) as Generation;
    const events = await callEdge(`/v1/generations/${created.id}/events?access_token=${token.token}`, {
      headers: { origin },
    });
    expect(events.status).toBe(200);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    expect(await events.text()).toContain('event: generation.queued');
    const fromElsewhere = await callEdge(`/v1/generations/${created.id}/events?access_token=${token.token}`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(fromElsewhere.status).toBe(403);
    const secretInUrl = await callEdge(`/v1/generations/${created.id}/events?access_token=${account.apiKey}`);
    expect(secretInUrl.status).toBe(401);
    const otherRoute = await callEdge(`/v1/generations/${created.id}?access_token=${token.token}`, {
      headers: { origin },
    });
    expect(otherRoute.status).toBe(401);
  });

  it('stop working when the key that minted them is revoked', async () => {
    const account = await createTestAccount();
    const origin = 'https://app.example';
    const token = await mint(account.apiKey, { origin, max_spend: 100 });
    await admin(`/keys/${account.keyId}/revoke`);
    expect((await generate(token.token, { origin })).status).toBe(401);
  });
});

describe('rate limits', () => {
  it('trip with 429, Retry-After and RateLimit headers, and recover (account object buckets)', async () => {
    const account = await createTestAccount({ rate_limit: { limit: 3, period_s: 1 } });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await callEdge('/v1/balance', withKey(account.apiKey));
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(await codeOf(last!)).toBe('rate_limited');
    expect(last!.headers.get('retry-after')).toBe('1');
    expect(last!.headers.get('ratelimit-limit')).toBe('3');
    expect(last!.headers.get('ratelimit-remaining')).toBe('0');
    await new Promise((r) => setTimeout(r, 1100));
    const recovered = await callEdge('/v1/balance', withKey(account.apiKey));
    expect(recovered.status).toBe(200);
    expect(recovered.headers.get('ratelimit-remaining')).toBe('2');
  });

  it('uses the Workers Rate Limiting bindings for default limits when they are bound', async () => {
    const calls: string[] = [];
    const binding = (allow: boolean) => ({
      limit: async ({ key }: { key: string }) => {
        calls.push(key);
        return { success: allow };
      },
    });
    const auth = { accountId: 'acct_x', keyId: 'key_x', rateLimit: null };
    const allowed = await decideRateLimit(
      { ...(env as Bindings), KEY_RATE_LIMITER: binding(true), ACCOUNT_RATE_LIMITER: binding(true) },
      auth,
    );
    expect(allowed.allowed).toBe(true);
    expect(calls).toEqual(['key_x', 'acct_x']);
    const refused = await decideRateLimit(
      { ...(env as Bindings), KEY_RATE_LIMITER: binding(true), ACCOUNT_RATE_LIMITER: binding(false) },
      auth,
    );
    expect(refused).toMatchObject({ allowed: false, limit: 1200, retryAfterS: 60 });
  });
});
