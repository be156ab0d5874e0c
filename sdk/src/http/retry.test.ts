import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../errors/errors.ts';
import {
  backoffDelay,
  INITIAL_RETRY_DELAY_MS,
  MAX_RETRY_DELAY_MS,
  RETRY_JITTER_RATIO,
  sleep,
} from './retry.ts';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, without jitter at random() = 0', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, () => 0))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
    expect(INITIAL_RETRY_DELAY_MS).toBe(500);
    expect(MAX_RETRY_DELAY_MS).toBe(8000);
  });

  it('takes off at most the jitter ratio', () => {
    expect(backoffDelay(1, () => 1)).toBe(Math.round(1000 * (1 - RETRY_JITTER_RATIO)));
    for (let i = 0; i < 100; i++) {
      const delay = backoffDelay(2);
      expect(delay).toBeGreaterThanOrEqual(2000 * (1 - RETRY_JITTER_RATIO));
      expect(delay).toBeLessThanOrEqual(2000);
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });

  it('ignores junk and absence', () => {
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter('-1')).toBeUndefined();
  });
});

describe('sleep', () => {
  it('rejects with the abort reason as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('enough')), 20);
    await expect(sleep(10_000, controller.signal)).rejects.toThrow('enough');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
