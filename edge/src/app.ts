import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { authenticate } from './auth/middleware.ts';
import type { AppEnv } from './env.ts';
import { idempotency } from './idempotency/middleware.ts';
import { bufferBody } from './lib/body.ts';
import { ApiError, fallbackErrorResponse, sendError } from './lib/errors.ts';
import { playgroundRoute } from './playground/route.ts';
import { rateLimit } from './ratelimit/middleware.ts';
import { adminRoute } from './routes/admin.ts';
import { billingRoute } from './routes/billing.ts';
import { cancelGenerationRoute } from './routes/generations/cancel.ts';
import { createGenerationRoute } from './routes/generations/create.ts';
import { generationEventsRoute } from './routes/generations/events.ts';
import { getGenerationRoute } from './routes/generations/get.ts';
import { listGenerationsRoute } from './routes/generations/list.ts';
import { healthRoute } from './routes/health.ts';
import { imagesRoute } from './routes/images.ts';
import { modelsRoute } from './routes/models.ts';
import { openApiRoute } from './routes/openapi.ts';
import { poolMetricsRoute } from './routes/pool-metrics.ts';
import { preprocessRoute } from './routes/preprocess.ts';
import { replicateWebhookRoute } from './routes/replicate-webhook.ts';
import { webhooksRoute } from './routes/webhooks.ts';
import { workerCallbackRoute } from './routes/worker-callback.ts';

/** Builds the edge app: middleware, routes, and the envelope for every error. */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.use('*', secureHeaders({ crossOriginResourcePolicy: 'cross-origin' }));
  app.use('*', async (c, next) => {
    const origins = (c.env.CORS_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    if (origins.length === 0) return next();
    return cors({
      origin: origins.includes('*') ? '*' : origins,
      allowHeaders: ['authorization', 'content-type', 'idempotency-key', 'prefer', 'last-event-id'],
      exposeHeaders: [
        'location',
        'x-request-id',
        'retry-after',
        'preference-applied',
        'idempotent-replayed',
        'ratelimit-limit',
        'ratelimit-remaining',
        'ratelimit-reset',
        'ratelimit-policy',
      ],
      maxAge: 600,
    })(c, next);
  });
  // Credentials, then the caller's rate limits, then Idempotency-Key replay (so a replay is rate limited
  // but never charged twice).
  app.use('/v1/*', authenticate);
  app.use('/v1/*', rateLimit);
  app.use('*', bufferBody);
  app.use('/v1/*', idempotency);
  for (const route of [
    healthRoute,
    playgroundRoute,
    openApiRoute,
    modelsRoute,
    createGenerationRoute,
    getGenerationRoute,
    listGenerationsRoute,
    generationEventsRoute,
    cancelGenerationRoute,
    preprocessRoute,
    imagesRoute,
    replicateWebhookRoute,
    adminRoute,
    billingRoute,
    webhooksRoute,
    workerCallbackRoute,
    poolMetricsRoute,
  ]) {
    app.route('/', route);
  }

  app.notFound((c) =>
    sendError(c, 'not_found', `No route for ${c.req.method} ${new URL(c.req.url).pathname}`),
  );
  // Every failure leaves as the envelope with the request id: never a plain-text trace or an empty 500.
  app.onError((error, c) => {
    try {
      if (error instanceof ApiError) {
        for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
        return sendError(c, error.code, error.message, error.details);
      }
      if (error instanceof HTTPException && error.status < 500) {
        return sendError(c, error.status === 413 ? 'payload_too_large' : 'invalid_request', error.message);
      }
      if (error instanceof URIError) {
        return sendError(c, 'invalid_request', 'The URL has malformed percent-encoding');
      }
      console.error('unhandled edge error', error);
      return sendError(c, 'internal_error', 'Internal error; it has been logged');
    } catch (secondary) {
      console.error('error handler failed', error, secondary);
      return fallbackErrorResponse(c.get('requestId'));
    }
  });
  return app;
}

/** The app's type, for hono's typed client. */
export type EdgeApp = ReturnType<typeof createApp>;
