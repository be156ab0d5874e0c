import type { ApiKeyScope } from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import type { MiddlewareHandler } from 'hono';
import type { ClientTokenLimits } from '../accounts/object.ts';
import type { AppEnv } from '../env.ts';
import { ApiError } from '../lib/errors.ts';
import { timingSafeEqual } from './compare.ts';

/** Only write `last_used_at` when the stored value is older than this (one D1 write per key per minute). */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Scopes a client token carries: it can create and follow generations, nothing else. */
export const CLIENT_TOKEN_SCOPES: readonly ApiKeyScope[] = ['generations:read', 'generations:write'];

/** Who is calling: the account, the key (or the key that minted the client token), and what it may do. */
export interface AuthContext {
  accountId: string;
  keyId: string;
  kind: 'secret_key' | 'client_token';
  scopes: readonly ApiKeyScope[];
  clientToken: ClientTokenLimits | null;
  rateLimit: { limit: number; period_s: number } | null;
}

/**
 * Paths anyone may call: health, the API document, models, pricing and the Replicate callback (verified by
 * its own signature). Stored images are not public: see {@link isSignedImageRequest}.
 */
export function isPublicPath(path: string): boolean {
  return (
    path === '/healthz' ||
    path === '/v1/webhooks/replicate' ||
    path === '/openapi.json' ||
    path === '/v1/models' ||
    path === '/v1/pricing'
  );
}

/** An image read through a signed URL: the images route checks the signature instead of credentials. */
export function isSignedImageRequest(path: string, url: URL): boolean {
  return path.startsWith('/v1/images/') && (url.searchParams.has('sig') || url.searchParams.has('exp'));
}

const ROUTE_SCOPES: [method: string, path: RegExp, scope: ApiKeyScope][] = [
  ['POST', /^\/v1\/generations(\/[^/]+\/cancel)?$/, 'generations:write'],
  ['GET', /^\/v1\/generations\//, 'generations:read'],
  ['POST', /^\/v1\/preprocess$/, 'generations:write'],
  ['GET', /^\/v1\/(balance|usage|account)$/, 'billing:read'],
  ['*', /^\/v1\/webhooks\//, 'webhooks:manage'],
  ['POST', /^\/v1\/client-tokens$/, 'client_tokens:create'],
];

/** The scope a route needs, or null for routes that need only a valid credential. */
export function requiredScope(method: string, path: string): ApiKeyScope | null {
  for (const [m, pattern, scope] of ROUTE_SCOPES) {
    if ((m === '*' || m === method) && pattern.test(path)) return scope;
  }
  return null;
}

interface KeyLookup {
  id: string;
  account_id: string;
  secret_hash: string;
  scopes: string;
  last_used_at: number | null;
  revoked_at: number | null;
  rate_limit: number | null;
  rate_limit_period_s: number | null;
}

interface TokenLookup {
  id: string;
  account_id: string;
  key_id: string;
  token_hash: string;
  origin: string;
  max_spend: number;
  max_generations: number;
  expires_at: number;
  key_revoked_at: number | null;
  rate_limit: number | null;
  rate_limit_period_s: number | null;
}

function unauthenticated(message: string): ApiError {
  return new ApiError('unauthenticated', message, [], { 'www-authenticate': 'Bearer realm="contour"' });
}

function limits(row: { rate_limit: number | null; rate_limit_period_s: number | null }) {
  return row.rate_limit !== null && row.rate_limit_period_s !== null
    ? { limit: row.rate_limit, period_s: row.rate_limit_period_s }
    : null;
}

/**
 * A browser `EventSource` cannot send headers, so the events stream also takes a client token as
 * `?access_token=ct_...` (short-lived and origin-bound). Secret keys are never accepted in URLs, where
 * logs and referrers would keep them.
 */
function eventStreamToken(method: string, path: string, token: string | undefined): string | undefined {
  if (method !== 'GET' || !/^\/v1\/generations\/[^/]+\/events$/.test(path)) return undefined;
  return token?.startsWith('ct_') ? token : undefined;
}

/**
 * Authenticates `/v1/*` (except public and admin paths): `Authorization: Bearer sk_...` secret keys, or
 * `ct_...` client tokens from their allowed `Origin`. Only the SHA-256 of a credential is looked up and
 * compared (in constant time). 401 for missing, unknown, revoked or expired credentials; 403 for a wrong
 * origin or a missing scope.
 */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const url = new URL(c.req.url);
  const path = url.pathname;
  if (!path.startsWith('/v1/') || isPublicPath(path) || path.startsWith('/v1/admin/')) return next();
  if (isSignedImageRequest(path, url)) return next();
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  const credential = match?.[1] ?? eventStreamToken(c.req.method, path, c.req.query('access_token'));
  if (!credential) throw unauthenticated('Send Authorization: Bearer sk_... (or a client token)');
  const hash = await sha256Hex(credential);
  let auth: AuthContext;
  if (credential.startsWith('sk_')) {
    const row = await c.env.DB.prepare(
      `SELECT k.id, k.account_id, k.secret_hash, k.scopes, k.last_used_at, k.revoked_at, a.rate_limit, a.rate_limit_period_s
       FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.secret_hash = ?`,
    )
      .bind(hash)
      .first<KeyLookup>();
    if (!row || !timingSafeEqual(row.secret_hash, hash)) throw unauthenticated('Unknown API key');
    if (row.revoked_at !== null) throw unauthenticated('This API key was revoked');
    const now = Date.now();
    if (row.last_used_at === null || now - row.last_used_at > LAST_USED_RESOLUTION_MS) {
      const update = c.env.DB.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?')
        .bind(now, row.id)
        .run();
      try {
        c.executionCtx.waitUntil(update);
      } catch {
        await update;
      }
    }
    auth = {
      accountId: row.account_id,
      keyId: row.id,
      kind: 'secret_key',
      scopes: row.scopes.split(' ').filter(Boolean) as ApiKeyScope[],
      clientToken: null,
      rateLimit: limits(row),
    };
  } else if (credential.startsWith('ct_')) {
    const row = await c.env.DB.prepare(
      `SELECT t.*, k.revoked_at AS key_revoked_at, a.rate_limit, a.rate_limit_period_s
       FROM client_tokens t JOIN api_keys k ON k.id = t.key_id JOIN accounts a ON a.id = t.account_id
       WHERE t.token_hash = ?`,
    )
      .bind(hash)
      .first<TokenLookup>();
    if (!row || !timingSafeEqual(row.token_hash, hash)) throw unauthenticated('Unknown client token');
    if (row.key_revoked_at !== null)
      throw unauthenticated('The key that minted this client token was revoked');
    if (Date.now() >= row.expires_at) throw unauthenticated('This client token has expired');
    const origin = c.req.header('origin') ?? '';
    if (!timingSafeEqual(origin, row.origin))
      throw new ApiError('forbidden', 'This client token is not valid from this origin');
    auth = {
      accountId: row.account_id,
      keyId: row.key_id,
      kind: 'client_token',
      scopes: CLIENT_TOKEN_SCOPES,
      clientToken: { id: row.id, max_spend: row.max_spend, max_generations: row.max_generations },
      rateLimit: limits(row),
    };
  } else {
    throw unauthenticated('Credentials must be a secret key (sk_...) or a client token (ct_...)');
  }
  const scope = requiredScope(c.req.method, path);
  if (scope && !auth.scopes.includes(scope)) {
    throw new ApiError('forbidden', `This credential lacks the ${scope} scope`, [
      { path: '', message: `needs scope ${scope}` },
    ]);
  }
  c.set('auth', auth);
  return next();
};

/** The authenticated caller (routes behind {@link authenticate} only). */
export function authOf(c: { get(key: 'auth'): AuthContext | undefined }): AuthContext {
  const auth = c.get('auth');
  if (!auth) throw unauthenticated('Authentication required');
  return auth;
}

/** Guards `/v1/admin/*` with `Authorization: Bearer <ADMIN_SECRET>`; without a configured secret it is closed. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const secret = c.env.ADMIN_SECRET ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  if (!match) throw unauthenticated('The admin API needs Authorization: Bearer <admin secret>');
  if (!secret || !timingSafeEqual(match[1]!, secret)) throw unauthenticated('Not the admin secret');
  return next();
};
