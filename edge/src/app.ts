import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import type { AppEnv } from './env.ts';
import { ApiError, sendError } from './lib/errors.ts';
import { isMalformedJsonError } from './lib/validation.ts';
import { healthRoute } from './routes/health.ts';
import { openApiRoute } from './routes/openapi.ts';

/** Builds the edge app: middleware, routes, and the envelope for every error. */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.route('/', healthRoute);
  app.route('/', openApiRoute);

  app.notFound((c) =>
    sendError(c, 'not_found', `No route for ${c.req.method} ${new URL(c.req.url).pathname}`),
  );
  app.onError((error, c) => {
    if (error instanceof ApiError) {
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
      return sendError(c, error.code, error.message, error.details);
    }
    if (isMalformedJsonError(error))
      return sendError(c, 'invalid_json', 'The request body is not valid JSON');
    if (error instanceof HTTPException && error.status < 500) {
      return sendError(c, error.status === 413 ? 'payload_too_large' : 'invalid_request', error.message);
    }
    console.error('unhandled edge error', error);
    return sendError(c, 'internal_error', 'Internal error; it has been logged');
  });
  return app;
}

/** The app's type, for hono's typed client. */
export type EdgeApp = ReturnType<typeof createApp>;
