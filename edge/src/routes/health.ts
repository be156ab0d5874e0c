import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';

/** `GET /healthz`: the edge is up (no dependencies checked; the worker pool has its own /readyz). */
export const healthRoute = new Hono<AppEnv>().get('/healthz', (c) =>
  c.json({ status: 'ok', environment: c.env.ENVIRONMENT }),
);
