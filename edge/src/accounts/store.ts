import { API_KEY_SCOPES, type ApiKey, type ApiKeyScope, type IssuedApiKey } from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import { generateWebhookSecret } from '@contour/shared/webhooks';
import type { Bindings } from '../env.ts';
import { randomId } from '../images/store.ts';
import { ApiError } from '../lib/errors.ts';

/** Length of the key prefix kept in clear to recognise a key (`sk_` + 8 characters). */
export const KEY_PREFIX_LENGTH = 11;

/** An account row. */
export interface AccountRow {
  id: string;
  name: string;
  webhook_secret: string;
  rate_limit: number | null;
  rate_limit_period_s: number | null;
  created_at: number;
}

/** An API key row (the secret itself is never stored). */
export interface ApiKeyRow {
  id: string;
  account_id: string;
  name: string;
  prefix: string;
  secret_hash: string;
  scopes: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** ISO time of a stored millisecond timestamp. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The public view of a key row. */
export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    object: 'api_key',
    account_id: row.account_id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes.split(' ').filter(Boolean) as ApiKeyScope[],
    created_at: iso(row.created_at),
    last_used_at: row.last_used_at === null ? null : iso(row.last_used_at),
    revoked_at: row.revoked_at === null ? null : iso(row.revoked_at),
  };
}

/** Loads an account or throws 404. */
export async function getAccount(env: Pick<Bindings, 'DB'>, accountId: string): Promise<AccountRow> {
  const row = await env.DB.prepare('SELECT * FROM accounts WHERE id = ?').bind(accountId).first<AccountRow>();
  if (!row) throw new ApiError('not_found', `No account ${accountId}`);
  return row;
}

/** Creates an account (with its webhook secret). */
export async function createAccount(
  env: Pick<Bindings, 'DB'>,
  input: { id?: string; name: string; rate_limit?: { limit: number; period_s: number } },
): Promise<AccountRow> {
  const row: AccountRow = {
    id: input.id ?? `acct_${randomId(20)}`,
    name: input.name,
    webhook_secret: generateWebhookSecret(),
    rate_limit: input.rate_limit?.limit ?? null,
    rate_limit_period_s: input.rate_limit?.period_s ?? null,
    created_at: Date.now(),
  };
  await env.DB.prepare(
    'INSERT INTO accounts (id, name, webhook_secret, rate_limit, rate_limit_period_s, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  )
    .bind(row.id, row.name, row.webhook_secret, row.rate_limit, row.rate_limit_period_s, row.created_at)
    .run();
  return row;
}

/** Stores a key for `secret` (a new random `sk_...` unless given) and returns it, secret included. */
export async function issueKey(
  env: Pick<Bindings, 'DB'>,
  accountId: string,
  options: { name?: string; scopes?: readonly ApiKeyScope[]; secret?: string } = {},
): Promise<IssuedApiKey> {
  const secret = options.secret ?? `sk_${randomId(40)}`;
  const row: ApiKeyRow = {
    id: `key_${randomId(20)}`,
    account_id: accountId,
    name: options.name ?? '',
    prefix: secret.slice(0, KEY_PREFIX_LENGTH),
    secret_hash: await sha256Hex(secret),
    scopes: (options.scopes ?? API_KEY_SCOPES).join(' '),
    created_at: Date.now(),
    last_used_at: null,
    revoked_at: null,
  };
  await env.DB.prepare(
    'INSERT INTO api_keys (id, account_id, name, prefix, secret_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
    .bind(row.id, row.account_id, row.name, row.prefix, row.secret_hash, row.scopes, row.created_at)
    .run();
  return { ...toApiKey(row), secret };
}

/** Revokes a key (idempotent); 404 when it does not exist. */
export async function revokeKey(env: Pick<Bindings, 'DB'>, keyId: string): Promise<ApiKey> {
  await env.DB.prepare('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?')
    .bind(Date.now(), keyId)
    .run();
  const row = await env.DB.prepare('SELECT * FROM api_keys WHERE id = ?').bind(keyId).first<ApiKeyRow>();
  if (!row) throw new ApiError('not_found', `No key ${keyId}`);
  return toApiKey(row);
}
