import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  AccountSchema,
  BalanceSchema,
  ClientTokenRequestSchema,
  ClientTokenSchema,
  CreateWebhookEndpointRequestSchema,
  ErrorEnvelopeSchema,
  GenerationEventSchema,
  GenerationIdSchema,
  GenerationListQuerySchema,
  GenerationListSchema,
  GenerationRequestSchema,
  GenerationSchema,
  ModelListSchema,
  PreprocessRequestSchema,
  PreprocessResultSchema,
  PricingSchema,
  UsageReportSchema,
  WebhookDeliveryListSchema,
  WebhookDeliverySchema,
  WebhookEndpointSchema,
  WebhookPayloadSchema,
} from '../contracts/index.ts';

/** Version string of the public API document. */
export const API_VERSION = '1.0.0';

const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((status) => [
      String(status),
      {
        description:
          'Error envelope; `error.code` is machine-readable, `error.details` names the fields at fault.',
        content: { 'application/json': { schema: ErrorEnvelopeSchema } },
      },
    ]),
  );

const idParam = z.object({ id: GenerationIdSchema });

/** Builds the OpenAPI 3.1 document of the public API v1 from the shared zod schemas. */
export function buildOpenApiDocument(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A secret key `sk_...` (servers) or a short-lived client token (browsers).',
  });
  const security = [{ bearer: [] }];

  registry.registerPath({
    method: 'post',
    path: '/v1/generations',
    summary: 'Create a generation',
    description:
      'Validates, charges a credit hold and queues the job. Async by default (202 + Location); ' +
      '`Prefer: wait=N` (N <= 60) holds the response until the generation finishes or N seconds pass.',
    security,
    request: {
      headers: z.object({
        'Idempotency-Key': z.string().max(255).optional(),
        Prefer: z.string().optional(),
      }),
      body: { content: { 'application/json': { schema: GenerationRequestSchema } }, required: true },
    },
    responses: {
      200: {
        description: 'Finished within the `Prefer: wait` time',
        content: { 'application/json': { schema: GenerationSchema } },
      },
      202: {
        description: 'Accepted and queued',
        content: { 'application/json': { schema: GenerationSchema } },
      },
      ...errorResponses(400, 401, 402, 409, 413, 415, 422, 429),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/generations',
    summary: 'List your generations, newest first',
    description:
      'Secret keys only (client tokens get 403). Pass `next_cursor` as `cursor` for the next page.',
    security,
    request: { query: GenerationListQuerySchema },
    responses: {
      200: {
        description: 'A page of generations',
        content: { 'application/json': { schema: GenerationListSchema } },
      },
      ...errorResponses(401, 403, 422),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/generations/{id}',
    summary: 'Get a generation',
    security,
    request: { params: idParam },
    responses: {
      200: { description: 'The generation', content: { 'application/json': { schema: GenerationSchema } } },
      ...errorResponses(401, 404),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/generations/{id}/events',
    summary: 'Follow a generation (Server-Sent Events)',
    description:
      'Each SSE message has `event: <type>`, `id: <sequence>` and the event as JSON `data`. Browsers using ' +
      '`EventSource` (which cannot send headers) may pass a client token as `?access_token=ct_...`.',
    security,
    request: { params: idParam },
    responses: {
      200: { description: 'SSE stream', content: { 'text/event-stream': { schema: GenerationEventSchema } } },
      ...errorResponses(401, 404),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/generations/{id}/cancel',
    summary: 'Cancel a generation',
    description:
      'Queued or running work stops; the credit hold is released. Terminal generations are returned unchanged.',
    security,
    request: { params: idParam },
    responses: {
      200: {
        description: 'The generation after cancellation',
        content: { 'application/json': { schema: GenerationSchema } },
      },
      ...errorResponses(401, 404),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/preprocess',
    summary: 'Make a control map only',
    security,
    request: {
      body: { content: { 'application/json': { schema: PreprocessRequestSchema } }, required: true },
    },
    responses: {
      200: {
        description: 'The control map',
        content: { 'application/json': { schema: PreprocessResultSchema } },
      },
      ...errorResponses(400, 401, 413, 415, 422, 429),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/models',
    summary: 'Control types and whether this deployment serves them',
    responses: {
      200: { description: 'Models', content: { 'application/json': { schema: ModelListSchema } } },
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/images/{key}',
    summary: "Fetch a stored image (outputs, control maps, inputs): signed URL or the owner's credentials",
    description:
      'Images are private. The URLs in generation objects are signed and expire (`exp`, unix seconds; `sig`, ' +
      "HMAC-SHA256): they work without credentials until then. Without `exp`/`sig` the owning account's " +
      'credentials are needed; other accounts get 404.',
    request: {
      params: z.object({ key: z.string() }),
      query: z.object({ exp: z.string().optional(), sig: z.string().optional() }),
    },
    responses: {
      200: { description: 'The image bytes', content: { 'image/png': { schema: z.string() } } },
      ...errorResponses(401, 403, 404),
    },
  });

  registerBillingPaths(registry, security);

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Contour API',
      version: API_VERSION,
      description: 'ControlNet image generation, pay per request.',
    },
    servers: [{ url: 'http://localhost:8787', description: 'Local stack (npm start)' }],
  });
}

/** The document as committed in `shared/openapi.json` (stable key order, trailing newline). */
export function serializeOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Pricing, balance, usage, client tokens and customer webhooks (issue 8). */
function registerBillingPaths(registry: OpenAPIRegistry, security: { bearer: never[] }[]): void {
  registry.registerPath({
    method: 'get',
    path: '/v1/pricing',
    summary: 'The published price function (credits) and its constants',
    responses: { 200: json(PricingSchema, 'Pricing') },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/balance',
    summary: 'Available and reserved credits',
    security,
    responses: { 200: json(BalanceSchema, 'Balance'), ...errorResponses(401, 403, 429) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/account',
    summary: 'The calling account (with its webhook signing secret)',
    security,
    responses: { 200: json(AccountSchema, 'Account'), ...errorResponses(401, 403, 429) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/usage',
    summary: 'Charged generations in a time range (JSON, or CSV with format=csv / Accept: text/csv)',
    security,
    request: {
      query: z.object({
        from: z.string().optional().describe('ISO datetime or date; default 30 days before `to`.'),
        to: z.string().optional().describe('ISO datetime or date (a date includes that day); default now.'),
        format: z.enum(['json', 'csv']).optional(),
      }),
    },
    responses: {
      200: {
        description: 'Usage report',
        content: { 'application/json': { schema: UsageReportSchema }, 'text/csv': { schema: z.string() } },
      },
      ...errorResponses(401, 403, 422, 429),
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/client-tokens',
    summary: "Mint a short-lived browser token (from the app's server, with a secret key)",
    security,
    request: {
      headers: z.object({ 'Idempotency-Key': z.string().max(255).optional() }),
      body: { content: { 'application/json': { schema: ClientTokenRequestSchema } }, required: true },
    },
    responses: { 201: json(ClientTokenSchema, 'The token'), ...errorResponses(400, 401, 403, 422, 429) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/deliveries',
    summary: 'The webhook delivery log, newest first',
    security,
    request: {
      query: z.object({
        generation_id: z.string().optional(),
        status: z.enum(['pending', 'succeeded', 'failed']).optional(),
        limit: z.int().min(1).max(100).optional(),
      }),
    },
    responses: { 200: json(WebhookDeliveryListSchema, 'Deliveries'), ...errorResponses(401, 403, 429) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks/deliveries/{id}/redeliver',
    summary: 'Send a delivery again now (same webhook-id)',
    security,
    request: { params: z.object({ id: z.string() }) },
    responses: { 202: json(WebhookDeliverySchema, 'Scheduled'), ...errorResponses(401, 403, 404, 429) },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/webhooks/endpoints',
    summary: 'Add an account endpoint (gets terminal events of generations without their own `webhook`)',
    security,
    request: {
      body: {
        content: { 'application/json': { schema: CreateWebhookEndpointRequestSchema } },
        required: true,
      },
    },
    responses: {
      201: json(WebhookEndpointSchema, 'The endpoint, with its secret (shown once)'),
      ...errorResponses(400, 401, 403, 422, 429),
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/webhooks/endpoints',
    summary: 'List account endpoints',
    security,
    responses: {
      200: json(z.object({ object: z.literal('list'), data: z.array(WebhookEndpointSchema) }), 'Endpoints'),
    },
  });
  registry.registerPath({
    method: 'delete',
    path: '/v1/webhooks/endpoints/{id}',
    summary: 'Remove an account endpoint',
    security,
    request: { params: z.object({ id: z.string() }) },
    responses: { 204: { description: 'Removed' }, ...errorResponses(401, 403, 404, 429) },
  });
  registry.registerWebhook({
    method: 'post',
    path: 'generation.terminal',
    summary: 'A generation finished (succeeded, failed or canceled)',
    description:
      'POSTed to the request `webhook` (signed with the account secret) or to each account endpoint (its own ' +
      'secret). Headers webhook-id, webhook-timestamp, webhook-signature = v1,base64(HMAC-SHA256(secret, ' +
      '"id.timestamp.body")). Retried with backoff for about 27 h until a 2xx.',
    request: { body: { content: { 'application/json': { schema: WebhookPayloadSchema } } } },
    responses: { 200: { description: 'Accepted (any 2xx)' } },
  });
}
