import { signRequest } from '@contour/shared/signing';
import { describe, expect, it } from 'vitest';
import { RequestVerifier } from './auth.ts';

const body = new TextEncoder().encode('{"job_id":"j1"}');

async function headersFor(secret: string, now = Date.now()) {
  return new Headers(await signRequest({ method: 'POST', path: '/v1/jobs', body }, secret, now));
}

describe('RequestVerifier', () => {
  const verifier = () => new RequestVerifier({ secrets: ['new', 'old'], replayWindowS: 300, clockSkewS: 30 });

  it('accepts a fresh request signed with any configured secret, once', async () => {
    const v = verifier();
    const headers = await headersFor('old');
    expect(await v.verify('POST', '/v1/jobs', body, headers)).toBeUndefined();
    expect(await v.verify('POST', '/v1/jobs', body, headers)).toBe('replayed');
    expect(await v.verify('POST', '/v1/jobs', body, await headersFor('new'))).toBeUndefined();
  });

  it('names why a request is refused', async () => {
    const v = verifier();
    expect(await v.verify('POST', '/v1/jobs', body, await headersFor('other'))).toBe('mismatch');
    expect(await v.verify('POST', '/v1/jobs', body, await headersFor('new', Date.now() - 301_000))).toBe(
      'expired',
    );
    expect(await v.verify('POST', '/v1/jobs', body, await headersFor('new', Date.now() + 60_000))).toBe(
      'future',
    );
    expect(await v.verify('POST', '/v1/jobs', body, new Headers())).toBe('missing');
    // Signed for another path: the signature does not carry over.
    expect(await v.verify('DELETE', '/v1/jobs/j1', body, await headersFor('new'))).toBe('mismatch');
  });
});
