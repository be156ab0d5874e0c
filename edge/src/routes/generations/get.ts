import { Hono } from 'hono';
import type { AppEnv } from '../../env.ts';
import { generationStub } from '../../generations/stub.ts';
import { ApiError } from '../../lib/errors.ts';

/** `GET /v1/generations/:id`: the generation resource. */
export const getGenerationRoute = new Hono<AppEnv>().get('/v1/generations/:id', async (c) => {
  const id = c.req.param('id');
  const generation = await generationStub(c.env, id).get(c.get('auth')?.accountId);
  if (!generation) throw new ApiError('not_found', `No generation ${id}`);
  return c.json(generation);
});
