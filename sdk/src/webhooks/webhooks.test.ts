import { webhookHeaders } from '@contour/shared/webhooks';
import { describe, expect, it } from 'vitest';
import { Webhooks, WebhookVerificationError } from './webhooks.ts';

const SECRET = `whsec_${btoa('a-32-byte-secret-for-the-tests!!')}`;
const body = JSON.stringify({
  type: 'generation.succeeded',
  timestamp: '2026-01-01T00:00:00.000Z',
  data: { id: 'gen_abcdefgh' },
});

describe('webhooks.verify', () => {
  const webhooks = new Webhooks();

  it('accepts a correctly signed payload and returns it parsed', async () => {
    const headers = await webhookHeaders('msg_1', body, SECRET);
    const payload = await webhooks.verify(new Headers(headers), body, SECRET);
    expect(payload.type).toBe('generation.succeeded');
  });

  it('rejects a tampered body or another secret', async () => {
    const headers = await webhookHeaders('msg_1', body, SECRET);
    await expect(webhooks.verify(headers, body.replace('gen_', 'gen_x'), SECRET)).rejects.toMatchObject({
      code: 'invalid_signature',
    });
    const other = `whsec_${btoa('another-secret-of-32-bytes-long!')}`;
    await expect(webhooks.verify(headers, body, other)).rejects.toBeInstanceOf(WebhookVerificationError);
  });

  it('enforces the timestamp window both ways', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const old = await webhookHeaders('msg_2', body, SECRET, now - 301_000);
    await expect(webhooks.verify(old, body, SECRET, { nowMs: now })).rejects.toMatchObject({
      code: 'timestamp_out_of_tolerance',
    });
    const future = await webhookHeaders('msg_3', body, SECRET, now + 301_000);
    await expect(webhooks.verify(future, body, SECRET, { nowMs: now })).rejects.toMatchObject({
      code: 'timestamp_out_of_tolerance',
    });
    const recent = await webhookHeaders('msg_4', body, SECRET, now - 299_000);
    await expect(webhooks.verify(recent, body, SECRET, { nowMs: now })).resolves.toMatchObject({
      type: 'generation.succeeded',
    });
    await expect(webhooks.verify(old, body, SECRET, { nowMs: now, toleranceS: 600 })).resolves.toBeTruthy();
  });
});
