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

/**
 * Routes with their own bucket. `cancel` is kept apart from everything else, so a client that polls up to
 * its limit can still cancel (and stop being charged). `preprocess` is compute the caller does not pay
 * for in credits, so it has a tighter bucket of its own on top of the general one (client tokens less).
 */
export const ROUTE_LIMITS = {
  cancel: { limit: 120, period_s: 60, separate: true },
  preprocess: { limit: 60, period_s: 60, separate: false },
} as const;
/** `/v1/preprocess` calls per minute a browser client token gets (its account's secret keys get more). */
export const CLIENT_TOKEN_PREPROCESS_LIMIT = 20;

/** The route class of a request, or null for the general buckets only. */
export function routeClass(method: string, path: string): keyof typeof ROUTE_LIMITS | null {
  if (method === 'POST' && /^\/v1\/generations\/[^/]+\/cancel$/.test(path)) return 'cancel';
  if (method === 'POST' && path === '/v1/preprocess') return 'preprocess';
  return null;
}

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
  auth: Pick<AuthContext, 'accountId' | 'keyId' | 'rateLimit'> &
    Partial<Pick<AuthContext, 'kind' | 'clientToken'>>,
  route: keyof typeof ROUTE_LIMITS | null = null,
): Promise<RateDecision & { policy: string }> {
  if (route) {
    const spec = ROUTE_LIMITS[route];
    const limit =
      route === 'preprocess' && auth.kind === 'client_token' ? CLIENT_TOKEN_PREPROCESS_LIMIT : spec.limit;
    // Client tokens have their own bucket (they share the minting key's id).
    const holder = auth.clientToken?.id ?? auth.keyId;
    const own = { name: `${route}:${holder}`, limit, period_ms: spec.period_s * 1000 };
    if (spec.separate) {
      const decision = await accountStub(env, auth.accountId).rateLimit([own]);
      return { ...decision, policy: `${limit};w=${spec.period_s}` };
    }
    const general = await decideRateLimit(env, auth, null);
    if (!general.allowed) return general;
    const decision = await accountStub(env, auth.accountId).rateLimit([own]);
    return { ...decision, policy: `${limit};w=${spec.period_s}` };
  }
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
  const decision = await decideRateLimit(c.env, auth, routeClass(c.req.method, new URL(c.req.url).pathname));
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
