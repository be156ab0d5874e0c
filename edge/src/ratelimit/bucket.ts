/** A token bucket: `limit` requests per `periodMs`, refilled continuously. */
export interface Bucket {
  tokens: number;
  updatedMs: number;
}

/** What a limiter decided, with what the `RateLimit-*` headers report. */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetS: number;
  /** Seconds until one request is allowed (0 when allowed). */
  retryAfterS: number;
}

/** Takes one token from the bucket at `nowMs` (pure: returns the new bucket and the decision). */
export function takeToken(
  bucket: Bucket | null,
  limit: number,
  periodMs: number,
  nowMs: number,
): { bucket: Bucket; decision: RateDecision } {
  const ratePerMs = limit / periodMs;
  const elapsed = bucket ? Math.max(0, nowMs - bucket.updatedMs) : 0;
  const tokens = bucket ? Math.min(limit, bucket.tokens + elapsed * ratePerMs) : limit;
  const allowed = tokens >= 1;
  const left = allowed ? tokens - 1 : tokens;
  return {
    bucket: { tokens: left, updatedMs: nowMs },
    decision: {
      allowed,
      limit,
      remaining: Math.floor(left),
      resetS: Math.ceil((limit - left) / ratePerMs / 1000),
      retryAfterS: allowed ? 0 : Math.max(1, Math.ceil((1 - left) / ratePerMs / 1000)),
    },
  };
}
