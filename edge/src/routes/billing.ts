import {
  type Balance,
  ClientTokenRequestSchema,
  CREDITS_PER_STEP_AT_512,
  EXTRA_CONTROL_UNIT_FACTOR,
  generationCost,
  MAX_ACTIVE_CLIENT_TOKENS,
  MIN_CREDITS,
  type Pricing,
  UsageQuerySchema,
  type UsageRecord,
  type UsageReport,
} from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import { Hono } from 'hono';
import { accountStub } from '../accounts/object.ts';
import { getAccount, iso } from '../accounts/store.ts';
import { authOf } from '../auth/middleware.ts';
import type { AppEnv } from '../env.ts';
import { randomId } from '../images/store.ts';
import { ApiError } from '../lib/errors.ts';
import { parseJsonBody, parseOr422 } from '../lib/schema.ts';
import { toAccount } from './admin.ts';

/** Default window of `GET /v1/usage` when `from` is absent. */
export const DEFAULT_USAGE_WINDOW_MS = 30 * 24 * 3600_000;
/** Most records one usage report returns. */
export const MAX_USAGE_RECORDS = 10_000;

const PRICING_EXAMPLES = [
  { width: 512, height: 512, steps: 20, num_images: 1, control_units: 1 },
  { width: 768, height: 512, steps: 20, num_images: 1, control_units: 1 },
  { width: 512, height: 512, steps: 30, num_images: 4, control_units: 1 },
  { width: 512, height: 512, steps: 20, num_images: 1, control_units: 2 },
];

/** The published price list: the constants and formula of `generationCost`, with worked examples. */
export function pricing(): Pricing {
  return {
    object: 'pricing',
    unit: 'credits',
    formula:
      'max(min_credits, ceil(credits_per_step_at_512 * steps * (width*height)/(512*512) * num_images * ' +
      '(1 + extra_control_unit_factor * (control_units - 1)))); with init_image, steps is ' +
      'max(1, floor(steps * strength)) + 1 (the encoder pass)',
    credits_per_step_at_512: CREDITS_PER_STEP_AT_512,
    extra_control_unit_factor: EXTRA_CONTROL_UNIT_FACTOR,
    min_credits: MIN_CREDITS,
    examples: PRICING_EXAMPLES.map((work) => ({ ...work, credits: generationCost(work) })),
  };
}

function parseTime(value: string | undefined, fallback: number, endOfDay = false): number {
  if (value === undefined) return fallback;
  const ms = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value);
  return endOfDay && value.length === 10 ? ms + 24 * 3600_000 : ms;
}

const CSV_COLUMNS = [
  'generation_id',
  'created_at',
  'credits',
  'steps',
  'width',
  'height',
  'num_images',
  'control_units',
  'key_id',
] as const;

/** The usage records as CSV (RFC 4180; ids and numbers never need quoting). */
export function usageCsv(records: UsageRecord[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const r of records) lines.push(CSV_COLUMNS.map((column) => String(r[column] ?? '')).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** `/v1/pricing`, `/v1/balance`, `/v1/usage`, `/v1/account` and `/v1/client-tokens`. */
export const billingRoute = new Hono<AppEnv>()
  .get('/v1/pricing', (c) => c.json(pricing()))
  .get('/v1/balance', async (c) => {
    const { accountId } = authOf(c);
    const balance: Balance = {
      object: 'balance',
      ...(await accountStub(c.env, accountId).balance()),
      unit: 'credits',
    };
    return c.json(balance);
  })
  .get('/v1/account', async (c) => c.json(toAccount(await getAccount(c.env, authOf(c).accountId))))
  .get('/v1/usage', async (c) => {
    const { accountId } = authOf(c);
    const query = parseOr422(UsageQuerySchema, c.req.query());
    const to = parseTime(query.to, Date.now(), true);
    const from = parseTime(query.from, to - DEFAULT_USAGE_WINDOW_MS);
    if (!(from < to))
      throw new ApiError('validation_failed', '`from` must be before `to`', [
        { path: 'from', message: 'after to' },
      ]);
    const { results } = await c.env.DB.prepare(
      `SELECT generation_id, key_id, credits, steps, width, height, num_images, control_units, created_at
       FROM usage_records WHERE account_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at LIMIT ?`,
    )
      .bind(accountId, from, to, MAX_USAGE_RECORDS)
      .all<Omit<UsageRecord, 'created_at'> & { created_at: number }>();
    const records: UsageRecord[] = results.map((r) => ({ ...r, created_at: iso(r.created_at) }));
    const csv =
      query.format === 'csv' ||
      (query.format === undefined && (c.req.header('accept') ?? '').includes('text/csv'));
    if (csv) {
      return c.body(usageCsv(records), 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="usage.csv"',
      });
    }
    const report: UsageReport = {
      object: 'usage',
      from: iso(from),
      to: iso(to),
      total_credits: records.reduce((sum, r) => sum + r.credits, 0),
      generations: records.length,
      records,
    };
    return c.json(report);
  })
  .post('/v1/client-tokens', async (c) => {
    const auth = authOf(c);
    const body = await parseJsonBody(ClientTokenRequestSchema, c.req.raw);
    const active = await c.env.DB.prepare(
      'SELECT COUNT(*) AS n FROM client_tokens WHERE account_id = ? AND expires_at > ?',
    )
      .bind(auth.accountId, Date.now())
      .first<{ n: number }>();
    if ((active?.n ?? 0) >= MAX_ACTIVE_CLIENT_TOKENS) {
      throw new ApiError(
        'rate_limited',
        `An account holds at most ${MAX_ACTIVE_CLIENT_TOKENS} unexpired client tokens`,
        [],
        {
          'retry-after': '60',
        },
      );
    }
    const token = `ct_${randomId(40)}`;
    const id = `ctk_${randomId(20)}`;
    const now = Date.now();
    const expiresAt = now + body.expires_in * 1000;
    await c.env.DB.prepare(
      `INSERT INTO client_tokens (id, account_id, key_id, token_hash, origin, max_spend, max_generations, expires_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
      .bind(
        id,
        auth.accountId,
        auth.keyId,
        await sha256Hex(token),
        body.origin,
        body.max_spend,
        body.max_generations,
        expiresAt,
        now,
      )
      .run();
    return c.json(
      {
        id,
        object: 'client_token',
        token,
        origin: body.origin,
        expires_at: iso(expiresAt),
        max_spend: body.max_spend,
        max_generations: body.max_generations,
      },
      201,
    );
  });
