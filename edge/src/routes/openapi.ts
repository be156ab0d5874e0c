import { buildOpenApiDocument } from '@contour/shared/openapi';
import { Hono } from 'hono';
import type { AppEnv } from '../env.ts';

let cachedDocument: ReturnType<typeof buildOpenApiDocument> | undefined;

/** `GET /openapi.json`: the public API document, generated once per isolate from the shared schemas. */
export const openApiRoute = new Hono<AppEnv>().get('/openapi.json', (c) => {
  cachedDocument ??= buildOpenApiDocument();
  return c.json(cachedDocument);
});
