import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  ErrorEnvelopeSchema,
  GenerationEventSchema,
  GenerationIdSchema,
  GenerationRequestSchema,
  GenerationSchema,
  ModelListSchema,
  PreprocessRequestSchema,
  PreprocessResultSchema,
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
    description: 'Each SSE message has `event: <type>`, `id: <sequence>` and the event as JSON `data`.',
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
    summary: 'Fetch a stored image (outputs, control maps)',
    request: { params: z.object({ key: z.string() }) },
    responses: {
      200: { description: 'The image bytes', content: { 'image/png': { schema: z.string() } } },
      ...errorResponses(404),
    },
  });

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
