import { Hono } from 'hono';
import type { AppEnv } from '../../env.ts';
import { generationStub } from '../../generations/stub.ts';
import { ApiError } from '../../lib/errors.ts';

/**
 * `GET /v1/generations/:id/events`: Server-Sent Events from the generation's Durable Object, which replays
 * what the client missed (`Last-Event-ID`) and then streams live until the terminal event.
 */
export const generationEventsRoute = new Hono<AppEnv>().get('/v1/generations/:id/events', async (c) => {
  const id = c.req.param('id');
  const response = await generationStub(c.env, id).fetch(c.req.raw);
  if (response.status === 404) throw new ApiError('not_found', `No generation ${id}`);
  return response;
});
