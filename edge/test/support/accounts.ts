import { env, exports } from 'cloudflare:workers';
import type { ApiKeyScope, IssuedApiKey } from '@contour/shared/contracts';

/** The admin secret of the local config (wrangler.toml top-level vars). */
export const ADMIN_SECRET = 'local-dev-admin-secret';

/** The Worker built from wrangler.toml. */
export const worker = (exports as unknown as { default: { fetch(request: Request): Promise<Response> } })
  .default;

/** Calls the edge at `path`. */
export function callEdge(path: string, init?: RequestInit): Promise<Response> {
  return worker.fetch(new Request(`http://edge.test${path}`, init));
}

/** Calls the admin API with the admin secret. */
export async function admin<T>(path: string, body?: unknown, method = 'POST'): Promise<T> {
  const response = await callEdge(`/v1/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_SECRET}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`admin ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A test account with a key. */
export interface TestAccount {
  accountId: string;
  apiKey: string;
  keyId: string;
  webhookSecret: string;
}

/** Creates an account through the admin API, with credits and a key (all scopes unless given). */
export async function createTestAccount(
  options: {
    credits?: number;
    scopes?: ApiKeyScope[];
    rate_limit?: { limit: number; period_s: number };
  } = {},
): Promise<TestAccount> {
  const created = await admin<{
    account: { id: string; webhook_secret: string };
    api_key: IssuedApiKey;
  }>('/accounts', { name: 'test', credits: options.credits ?? 1_000_000, ...options });
  return {
    accountId: created.account.id,
    apiKey: created.api_key.secret,
    keyId: created.api_key.id,
    webhookSecret: created.account.webhook_secret,
  };
}

/** A POST with a JSON body (and any extra headers). */
export function jsonPost(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** `init` with `Authorization: Bearer <apiKey>` added. */
export function withKey(apiKey: string, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${apiKey}`);
  return { ...init, headers };
}

/** Sum of the account's ledger in D1. */
export async function ledgerSum(accountId: string): Promise<number> {
  const row = await env.DB.prepare(
    'SELECT COALESCE(SUM(amount), 0) AS total FROM ledger WHERE account_id = ?',
  )
    .bind(accountId)
    .first<{ total: number }>();
  return row?.total ?? 0;
}

let shared: Promise<TestAccount> | undefined;

/** One well-funded account per test file, for tests that only need to be authenticated. */
export function sharedTestAccount(): Promise<TestAccount> {
  shared ??= createTestAccount({ credits: 100_000_000 });
  return shared;
}

/** `callEdge` authenticated as {@link sharedTestAccount}. */
export async function authedCall(path: string, init?: RequestInit): Promise<Response> {
  const { apiKey } = await sharedTestAccount();
  return callEdge(path, withKey(apiKey, init));
}
