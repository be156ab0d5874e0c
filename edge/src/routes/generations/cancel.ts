import { Hono } from 'hono';
import type { AppEnv } from '../../env.ts';
import { generationStub } from '../../generations/stub.ts';
import { ApiError } from '../../lib/errors.ts';

/**
 * `POST /v1/generations/:id/cancel`: queued or running work stops (the queue consumer sees the state and
 * tells the worker); finished generations come back unchanged.
 */
export const cancelGenerationRoute = new Hono<AppEnv>().post('/v1/generations/:id/cancel', async (c) => {
  const id = c.req.param('id');
  const generation = await generationStub(c.env, id).cancel(c.get('auth')?.accountId);
  if (!generation) throw new ApiError('not_found', `No generation ${id}`);
  return c.json(generation);
});
