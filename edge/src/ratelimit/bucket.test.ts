import { describe, expect, it } from 'vitest';
import { type Bucket, takeToken } from './bucket.ts';

describe('takeToken', () => {
  it('allows `limit` requests, refuses the next, and refills at limit/period', () => {
    let bucket: Bucket | null = null;
    for (let i = 0; i < 3; i++) {
      const step = takeToken(bucket, 3, 3000, 1000);
      expect(step.decision).toMatchObject({ allowed: true, remaining: 2 - i });
      bucket = step.bucket;
    }
    const refused = takeToken(bucket, 3, 3000, 1000);
    expect(refused.decision).toMatchObject({ allowed: false, remaining: 0, retryAfterS: 1 });
    // One token per second comes back.
    expect(takeToken(refused.bucket, 3, 3000, 2000).decision.allowed).toBe(true);
    expect(takeToken(refused.bucket, 3, 3000, 1500).decision.allowed).toBe(false);
  });
});
