import { type Generation, type GenerationList, GenerationListQuerySchema } from '@contour/shared/contracts';
import { Hono } from 'hono';
import { authOf } from '../../auth/middleware.ts';
import type { AppEnv } from '../../env.ts';
import { generationStub } from '../../generations/stub.ts';
import { ApiError } from '../../lib/errors.ts';
import { parseOr422 } from '../../lib/schema.ts';

/**
 * `GET /v1/generations?limit&cursor`: the account's generations, newest first. Every generation created
 * through the API reserves its credits once, and that `reserve` entry reaches the D1 ledger before the
 * create returns, so the ledger is the account's generation index (ordered by its per-account `seq`). The
 * resources themselves come from the generations' Durable Objects. Client tokens may not list: a browser
 * token must not see the other generations of the account that minted it.
 */
export const listGenerationsRoute = new Hono<AppEnv>().get('/v1/generations', async (c) => {
  const auth = authOf(c);
  if (auth.kind !== 'secret_key' || !auth.scopes.includes('generations:read')) {
    throw new ApiError('forbidden', 'Listing generations needs a secret key with the generations:read scope');
  }
  const query = parseOr422(GenerationListQuerySchema, c.req.query());
  let afterSeq = Number.MAX_SAFE_INTEGER;
  if (query.cursor !== undefined) {
    const cursor = await c.env.DB.prepare(
      "SELECT seq FROM ledger WHERE account_id = ? AND kind = 'reserve' AND generation_id = ?",
    )
      .bind(auth.accountId, query.cursor)
      .first<{ seq: number }>();
    if (!cursor) {
      throw new ApiError('validation_failed', 'cursor is not a generation of this account', [
        { path: 'cursor', message: 'unknown cursor' },
      ]);
    }
    afterSeq = cursor.seq;
  }
  const { results } = await c.env.DB.prepare(
    `SELECT generation_id FROM ledger WHERE account_id = ? AND kind = 'reserve' AND seq < ?
     ORDER BY seq DESC LIMIT ?`,
  )
    .bind(auth.accountId, afterSeq, query.limit + 1)
    .all<{ generation_id: string }>();
  const ids = results.slice(0, query.limit).map((row) => row.generation_id);
  const generations: (Generation | null)[] = await Promise.all(
    ids.map((id) => generationStub(c.env, id).get()),
  );
  const data = generations.filter((g) => g !== null);
  const page: GenerationList = {
    object: 'list',
    data,
    has_more: results.length > query.limit,
    next_cursor: results.length > query.limit ? (ids.at(-1) ?? null) : null,
  };
  return c.json(page);
});
