import { describe, expect, it } from 'vitest';
import {
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
  type WebhookVerificationError,
  webhookHeaders,
} from './index.ts';

describe('Standard Webhooks signatures', () => {
  it('matches the specification example', async () => {
    // The example from the Standard Webhooks specification (standard-webhooks/spec.md).
    const signature = await signWebhook(
      { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330, body: '{"test": 2432232314}' },
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    );
    expect(signature).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('verifies its own headers and rejects tampering, other secrets, stale timestamps', async () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ type: 'generation.succeeded', data: { id: 'gen_1' } });
    const now = 1_700_000_000_000;
    const headers = await webhookHeaders('msg_1', body, secret, now);
    expect(await verifyWebhook(headers, body, secret, { nowMs: now })).toEqual(JSON.parse(body));
    const fail = (promise: Promise<unknown>) =>
      promise.then(
        () => 'verified',
        (error: WebhookVerificationError) => error.code,
      );
    expect(await fail(verifyWebhook(headers, `${body} `, secret, { nowMs: now }))).toBe('invalid_signature');
    expect(await fail(verifyWebhook(headers, body, generateWebhookSecret(), { nowMs: now }))).toBe(
      'invalid_signature',
    );
    expect(await fail(verifyWebhook(headers, body, secret, { nowMs: now + 301_000 }))).toBe(
      'timestamp_out_of_tolerance',
    );
    expect(await fail(verifyWebhook({ ...headers, 'webhook-id': undefined }, body, secret))).toBe(
      'missing_headers',
    );
    // Rotation: any one of several signatures may match.
    const rotated = { ...headers, 'webhook-signature': `v1,AAAA ${headers['webhook-signature']}` };
    expect(await verifyWebhook(new Headers(rotated), body, secret, { nowMs: now })).toEqual(JSON.parse(body));
  });
});
