import {
  type Account,
  BootstrapRequestSchema,
  CreateAccountRequestSchema,
  GrantCreditsRequestSchema,
  IssueKeyRequestSchema,
} from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import { Hono } from 'hono';
import { accountStub } from '../accounts/object.ts';
import { type AccountRow, createAccount, getAccount, iso, issueKey, revokeKey } from '../accounts/store.ts';
import { requireAdmin } from '../auth/middleware.ts';
import type { AppEnv, Bindings } from '../env.ts';
import { ApiError } from '../lib/errors.ts';
import { parseJsonBody } from '../lib/schema.ts';

/** The account `POST /v1/admin/bootstrap` creates for the local stack. */
export const DEV_ACCOUNT_ID = 'acct_dev';
/** Credits the dev account starts with (granted once). */
export const DEV_ACCOUNT_CREDITS = 100_000;

/** The owner's view of an account row. */
export function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    object: 'account',
    name: row.name,
    created_at: iso(row.created_at),
    webhook_secret: row.webhook_secret,
  };
}

/**
 * Idempotently prepares the local stack's dev account: creates `acct_dev` once, grants its opening
 * credits once, and registers `apiKey` (or issues a new key). Callable from scripts with the bindings.
 */
export async function bootstrapDevAccount(
  env: Pick<Bindings, 'DB' | 'ACCOUNTS'>,
  options: { apiKey?: string; credits?: number } = {},
) {
  let account = await env.DB.prepare('SELECT * FROM accounts WHERE id = ?')
    .bind(DEV_ACCOUNT_ID)
    .first<AccountRow>();
  account ??= await createAccount(env, { id: DEV_ACCOUNT_ID, name: 'Local development' });
  let secret = options.apiKey;
  const known =
    secret !== undefined &&
    (await env.DB.prepare('SELECT account_id, revoked_at FROM api_keys WHERE secret_hash = ?')
      .bind(await sha256Hex(secret))
      .first<{ account_id: string; revoked_at: number | null }>());
  if (known && (known.account_id !== DEV_ACCOUNT_ID || known.revoked_at !== null))
    throw new ApiError('conflict', 'That key belongs to another account or was revoked');
  if (!known) secret = (await issueKey(env, DEV_ACCOUNT_ID, { name: 'local dev', secret })).secret;
  const balance = await accountStub(env, DEV_ACCOUNT_ID).credit(DEV_ACCOUNT_ID, {
    kind: 'grant',
    amount: options.credits ?? DEV_ACCOUNT_CREDITS,
    idempotency_key: 'bootstrap',
    memo: 'opening credits for local development',
  });
  return { account: toAccount(account), api_key: secret!, available: balance.available };
}

/** `/v1/admin/*`: accounts, keys and credits, behind `Authorization: Bearer <ADMIN_SECRET>`. */
export const adminRoute = new Hono<AppEnv>()
  .use('/v1/admin/*', requireAdmin)
  .post('/v1/admin/bootstrap', async (c) => {
    const body = await parseJsonBody(BootstrapRequestSchema, c.req.raw);
    return c.json(
      await bootstrapDevAccount(c.env, {
        apiKey: body.api_key,
        credits: body.credits ?? DEV_ACCOUNT_CREDITS,
      }),
    );
  })
  .post('/v1/admin/accounts', async (c) => {
    const body = await parseJsonBody(CreateAccountRequestSchema, c.req.raw);
    const account = await createAccount(c.env, { name: body.name, rate_limit: body.rate_limit });
    const key = await issueKey(c.env, account.id, { name: 'default', scopes: body.scopes });
    let available = 0;
    if (body.credits > 0) {
      ({ available } = await accountStub(c.env, account.id).credit(account.id, {
        kind: 'grant',
        amount: body.credits,
        idempotency_key: 'opening',
        memo: 'opening credits',
      }));
    }
    return c.json({ account: toAccount(account), api_key: key, available }, 201);
  })
  .get('/v1/admin/accounts/:id', async (c) => {
    const account = await getAccount(c.env, c.req.param('id'));
    const balance = await accountStub(c.env, account.id).balance();
    return c.json({
      account: toAccount(account),
      balance: { object: 'balance', ...balance, unit: 'credits' },
    });
  })
  .post('/v1/admin/accounts/:id/keys', async (c) => {
    const account = await getAccount(c.env, c.req.param('id'));
    const body = await parseJsonBody(IssueKeyRequestSchema, c.req.raw);
    return c.json(await issueKey(c.env, account.id, body), 201);
  })
  .post('/v1/admin/keys/:id/revoke', async (c) => c.json(await revokeKey(c.env, c.req.param('id'))))
  .post('/v1/admin/accounts/:id/credits', async (c) => {
    const account = await getAccount(c.env, c.req.param('id'));
    const body = await parseJsonBody(GrantCreditsRequestSchema, c.req.raw);
    // The ledger's own idempotency: the same Idempotency-Key never grants twice.
    const key = c.req.header('idempotency-key') ?? crypto.randomUUID();
    const result = await accountStub(c.env, account.id).credit(account.id, {
      kind: body.kind,
      amount: body.amount,
      idempotency_key: key,
      memo: body.memo,
    });
    return c.json({ object: 'credit', applied: result.applied, available: result.available });
  });
