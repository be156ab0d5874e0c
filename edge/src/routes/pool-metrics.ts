import { Hono } from 'hono';
import { timingSafeEqual } from '../auth/compare.ts';
import { backlogStub } from '../dispatch/backlog.ts';
import type { AppEnv } from '../env.ts';
import { ApiError } from '../lib/errors.ts';

/**
 * `GET /worker/v1/metrics`: the pool's backlog for KEDA's metrics-api scaler (`Authorization: Bearer
 * METRICS_TOKEN`; closed while the token is unset). Top level: all pools, or the one named by `?pool=` (base
 * model and head set, e.g. `sd15:canny`); `pools` lists each. Values: queued, running, backlog, oldest_wait_s.
 */
export const poolMetricsRoute = new Hono<AppEnv>().get('/worker/v1/metrics', async (c) => {
  const token = c.env.METRICS_TOKEN;
  if (!token) throw new ApiError('not_found', 'The metrics endpoint is not enabled (set METRICS_TOKEN)');
  const given = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
  if (!timingSafeEqual(given, token)) throw new ApiError('unauthenticated', 'Missing or wrong metrics token');
  const snapshot = await backlogStub(c.env).snapshot();
  const wanted = c.req.query('pool');
  const top = wanted
    ? (snapshot.pools.find((p) => p.pool === wanted) ?? {
        pool: wanted,
        queued: 0,
        running: 0,
        backlog: 0,
        oldest_wait_s: 0,
      })
    : snapshot;
  const { queued, running, backlog, oldest_wait_s } = top;
  c.header('cache-control', 'no-store');
  return c.json({
    pool: wanted ?? null,
    queued,
    running,
    backlog,
    oldest_wait_s,
    pools: snapshot.pools,
    generated_at: new Date().toISOString(),
  });
});
