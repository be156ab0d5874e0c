import type { MiddlewareHandler } from 'hono';
import { accountStub } from '../accounts/object.ts';
import type { AuthContext } from '../auth/middleware.ts';
import type { AppEnv, Bindings } from '../env.ts';
import { ApiError } from '../lib/errors.ts';
import { setHeaders } from '../lib/headers.ts';
import type { RateDecision } from './bucket.ts';

/** Default requests per key per period; keep in step with `KEY_RATE_LIMITER` in wrangler.toml. */
export const DEFAULT_KEY_LIMIT = { limit: 600, period_s: 60 };
/** Default requests per account per period; keep in step with `ACCOUNT_RATE_LIMITER` in wrangler.toml. */
export const DEFAULT_ACCOUNT_LIMIT = { limit: 1200, period_s: 60 };

/** The subset of the Workers Rate Limiting binding this uses. */
export interface RateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/**
 * Decides one request against the per-key and per-account limits. The Workers Rate Limiting bindings
 * are used when present and the account has the default limits (they are cheap and per-location); an
 * account with its own limits, or a deployment without the bindings, uses the account's Durable
 * Object, which keeps exact token buckets.
 */
export async function decideRateLimit(
  env: Pick<Bindings, 'ACCOUNTS' | 'KEY_RATE_LIMITER' | 'ACCOUNT_RATE_LIMITER'>,
  auth: Pick<AuthContext, 'accountId' | 'keyId' | 'rateLimit'>,
): Promise<RateDecision & { policy: string }> {
  const keyBinding = env.KEY_RATE_LIMITER;
  const accountBinding = env.ACCOUNT_RATE_LIMITER;
  if (!auth.rateLimit && keyBinding && accountBinding) {
    const [key, account] = await Promise.all([
      keyBinding.limit({ key: auth.keyId }),
      accountBinding.limit({ key: auth.accountId }),
    ]);
    const refused = !key.success ? DEFAULT_KEY_LIMIT : !account.success ? DEFAULT_ACCOUNT_LIMIT : null;
    const shown = refused ?? DEFAULT_KEY_LIMIT;
    return {
      allowed: refused === null,
      limit: shown.limit,
      // The binding does not report what is left; -1 means "not known" and is not sent.
      remaining: -1,
      resetS: shown.period_s,
      retryAfterS: refused ? refused.period_s : 0,
      policy: `${DEFAULT_KEY_LIMIT.limit};w=${DEFAULT_KEY_LIMIT.period_s}`,
    };
  }
  const keyLimit = auth.rateLimit ?? DEFAULT_KEY_LIMIT;
  const accountLimit = auth.rateLimit ?? DEFAULT_ACCOUNT_LIMIT;
  const decision = await accountStub(env, auth.accountId).rateLimit([
    { name: `key:${auth.keyId}`, limit: keyLimit.limit, period_ms: keyLimit.period_s * 1000 },
    { name: 'account', limit: accountLimit.limit, period_ms: accountLimit.period_s * 1000 },
  ]);
  return { ...decision, policy: `${keyLimit.limit};w=${keyLimit.period_s}` };
}

/** Applies the rate limits to authenticated requests: `RateLimit-*` headers, 429 with `Retry-After`. */
export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const auth = c.get('auth');
  if (!auth) return next();
  const decision = await decideRateLimit(c.env, auth);
  const headers: Record<string, string> = {
    'ratelimit-limit': String(decision.limit),
    'ratelimit-reset': String(decision.resetS),
    'ratelimit-policy': decision.policy,
  };
  if (decision.remaining >= 0) headers['ratelimit-remaining'] = String(decision.remaining);
  if (!decision.allowed) {
    throw new ApiError('rate_limited', `Rate limit exceeded; retry in ${decision.retryAfterS} s`, [], {
      ...headers,
      'retry-after': String(decision.retryAfterS),
    });
  }
  await next();
  setHeaders(c, headers);
};
