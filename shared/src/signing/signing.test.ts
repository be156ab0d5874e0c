import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { NONCE_HEADER, SIGNATURE_HEADER, signRequest, TIMESTAMP_HEADER, verifyRequest } from './index.ts';

const secret = 'test-secret';
const parts = { method: 'POST', path: '/v1/jobs', body: '{"job_id":"j1"}' };
const now = 1_790_000_000_000;

const headersOf = (h: Record<string, string>) => new Headers(h);

describe('request signing', () => {
  it('matches an HMAC computed independently with node:crypto', async () => {
    const headers = await signRequest(parts, secret, now);
    const ts = Math.floor(now / 1000);
    const nonce = headers[NONCE_HEADER];
    expect(nonce).toMatch(/^[0-9a-f]{32}$/);
    const bodyHash = createHash('sha256').update(parts.body).digest('hex');
    const expected = createHmac('sha256', secret)
      .update(`POST\n/v1/jobs\n${ts}\n${nonce}\n${bodyHash}`)
      .digest('hex');
    expect(headers[TIMESTAMP_HEADER]).toBe(String(ts));
    expect(headers[SIGNATURE_HEADER]).toBe(`v1=${expected}`);
  });

  it('verifies its own signatures, also with bytes bodies and rotated secrets', async () => {
    const headers = headersOf(await signRequest(parts, secret, now));
    expect(await verifyRequest(parts, headers, secret, { now })).toEqual({ ok: true, timestamp: now / 1000 });
    const bytes = { ...parts, body: new TextEncoder().encode(parts.body) };
    expect((await verifyRequest(bytes, headers, ['old-secret', secret], { now })).ok).toBe(true);
  });

  it('rejects tampering with body, path or method', async () => {
    const headers = headersOf(await signRequest(parts, secret, now));
    for (const changed of [
      { ...parts, body: '{"job_id":"j2"}' },
      { ...parts, path: '/v1/jobs/other' },
      { ...parts, method: 'DELETE' },
    ]) {
      expect(await verifyRequest(changed, headers, secret, { now })).toEqual({
        ok: false,
        reason: 'mismatch',
      });
    }
    expect(await verifyRequest(parts, headers, 'other-secret', { now })).toEqual({
      ok: false,
      reason: 'mismatch',
    });
  });

  it('enforces the replay window and the clock-skew tolerance', async () => {
    const headers = headersOf(await signRequest(parts, secret, now));
    expect((await verifyRequest(parts, headers, secret, { now: now + 299_000 })).ok).toBe(true);
    expect(await verifyRequest(parts, headers, secret, { now: now + 301_000 })).toEqual({
      ok: false,
      reason: 'expired',
    });
    expect((await verifyRequest(parts, headers, secret, { now: now - 29_000 })).ok).toBe(true);
    expect(await verifyRequest(parts, headers, secret, { now: now - 31_000 })).toEqual({
      ok: false,
      reason: 'future',
    });
  });

  it('gives identical requests in the same second different signatures (nonce)', async () => {
    const first = await signRequest(parts, secret, now);
    const second = await signRequest(parts, secret, now);
    expect(first[SIGNATURE_HEADER]).not.toBe(second[SIGNATURE_HEADER]);
    expect((await verifyRequest(parts, headersOf(second), secret, { now })).ok).toBe(true);
    const swapped = headersOf({ ...first, [NONCE_HEADER]: second[NONCE_HEADER] });
    expect(await verifyRequest(parts, swapped, secret, { now })).toEqual({ ok: false, reason: 'mismatch' });
  });

  it('reports missing and malformed headers', async () => {
    expect(await verifyRequest(parts, headersOf({}), secret, { now })).toEqual({
      ok: false,
      reason: 'missing',
    });
    const nonce = { [NONCE_HEADER]: 'ab'.repeat(16) };
    const bad = headersOf({ ...nonce, [TIMESTAMP_HEADER]: 'soon', [SIGNATURE_HEADER]: 'v1=00' });
    expect(await verifyRequest(parts, bad, secret, { now })).toEqual({ ok: false, reason: 'malformed' });
    const short = headersOf({
      ...nonce,
      [TIMESTAMP_HEADER]: String(now / 1000),
      [SIGNATURE_HEADER]: 'v1=abcd',
    });
    expect(await verifyRequest(parts, short, secret, { now })).toEqual({ ok: false, reason: 'malformed' });
  });
});
