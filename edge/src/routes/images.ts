import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';
import { ApiError } from '../lib/errors.ts';

/** Keys look like `outputs/gen_x/0.png`: no traversal, no empty segments. */
const KEY = /^(inputs|controls|outputs)\/gen_[A-Za-z0-9]{8,64}\/[A-Za-z0-9_.-]{1,64}$/;

/** `GET /v1/images/:key`: stored images from R2 with immutable cache headers (keys are unguessable). */
export const imagesRoute = new Hono<AppEnv>().get('/v1/images/*', async (c) => {
  const key = decodeURIComponent(new URL(c.req.url).pathname.slice('/v1/images/'.length));
  if (!KEY.test(key)) throw new ApiError('not_found', 'No such image');
  const object = await c.env.IMAGES.get(key);
  if (!object) throw new ApiError('not_found', 'No such image');
  const headers = new Headers();
  object.writeHttpMetadata(headers);
  headers.set('etag', object.httpEtag);
  headers.set('cache-control', 'public, max-age=31536000, immutable');
  headers.set('x-content-type-options', 'nosniff');
  return new Response(object.body, { headers });
});
