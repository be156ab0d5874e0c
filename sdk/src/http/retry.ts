/** Retries after the first attempt (so at most `DEFAULT_MAX_RETRIES + 1` attempts). */
export const DEFAULT_MAX_RETRIES = 3;
/** Delay before the first retry when the API sent no `Retry-After`, in milliseconds. */
export const INITIAL_RETRY_DELAY_MS = 500;
/** Longest backoff between two retries, in milliseconds. */
export const MAX_RETRY_DELAY_MS = 8_000;
/** Fraction of each backoff that is randomised, so many clients do not retry in lockstep. */
export const RETRY_JITTER_RATIO = 0.25;
/**
 * Longest `Retry-After` the SDK waits out by itself, in milliseconds; a longer one is surfaced as a
 * `RateLimitError` (with `retryAfter`) instead of blocking the caller.
 */
export const MAX_RETRY_AFTER_MS = 60_000;
/** HTTP statuses worth retrying: rate limited, bad gateway, unavailable, gateway timeout. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** Timeout of one HTTP attempt (not of a whole `run`), in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The wait before retry number `retry` (0 for the first retry): exponential from
 * {@link INITIAL_RETRY_DELAY_MS}, capped at {@link MAX_RETRY_DELAY_MS}, minus up to
 * {@link RETRY_JITTER_RATIO} of it at random. `random` is injectable for tests.
 */
export function backoffDelay(retry: number, random: () => number = Math.random): number {
  const exponential = Math.min(MAX_RETRY_DELAY_MS, INITIAL_RETRY_DELAY_MS * 2 ** retry);
  return Math.round(exponential * (1 - RETRY_JITTER_RATIO * random()));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
