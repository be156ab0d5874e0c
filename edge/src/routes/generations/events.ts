import { Hono } from 'hono';
import type { AppEnv } from '../../env.ts';
import { ACCOUNT_HEADER } from '../../generations/object.ts';
import { generationStub } from '../../generations/stub.ts';
import { ApiError } from '../../lib/errors.ts';

/**
 * `GET /v1/generations/:id/events`: Server-Sent Events from the generation's Durable Object, which replays
 * what the client missed (`Last-Event-ID`) and then streams live until the terminal event.
 */
export const generationEventsRoute = new Hono<AppEnv>().get('/v1/generations/:id/events', async (c) => {
  const id = c.req.param('id');
  // The object answers 404 for generations of other accounts; never trust this header from the client.
  const forwarded = new Request(c.req.raw);
  forwarded.headers.delete(ACCOUNT_HEADER);
  const accountId = c.get('auth')?.accountId;
  if (accountId) forwarded.headers.set(ACCOUNT_HEADER, accountId);
  const response = await generationStub(c.env, id).fetch(forwarded);
  if (response.status === 404) throw new ApiError('not_found', `No generation ${id}`);
  return response;
});
