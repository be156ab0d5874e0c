import { exports } from 'cloudflare:workers';
import { GenerationRequestSchema } from '@contour/shared/contracts';
import { buildOpenApiDocument } from '@contour/shared/openapi';
import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import { describe, expect, it } from 'vitest';
import { ApiError, sendError } from '../src/lib/errors.ts';
import { parseJsonBody } from '../src/lib/schema.ts';

// These run inside workerd: `exports.default` is the Worker built from wrangler.toml.
const worker = (exports as unknown as { default: unknown }).default as {
  fetch(request: Request): Promise<Response>;
};
const call = (path: string, init?: RequestInit) => worker.fetch(new Request(`http://edge.test${path}`, init));

describe('edge app in workerd', () => {
  it('answers /healthz with the configured environment', async () => {
    const response = await call('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', environment: 'local' });
    expect(response.headers.get('x-request-id')).toMatch(/.+/);
  });

  it('serves the OpenAPI document generated from the shared schemas', async () => {
    const response = await call('/openapi.json');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });

  it('answers unknown routes with the error envelope', async () => {
    const response = await call('/v0/nothing', { headers: { 'x-request-id': 'req-abc' } });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: {
        code: 'not_found',
        message: 'No route for GET /v0/nothing',
        details: [],
        request_id: 'req-abc',
      },
    });
  });
});

describe('request validation (parseJsonBody) in workerd', () => {
  const app = new Hono()
    .use(requestId())
    .post('/v1/generations', async (c) => c.json(await parseJsonBody(GenerationRequestSchema, c.req.raw)))
    .onError((error, c) =>
      error instanceof ApiError ? sendError(c, error.code, error.message, error.details) : c.text('bug', 500),
    );

  it('answers a bad request with 422 and the fields at fault', async () => {
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: '', controls: [], width: 500, height: 512 }),
    });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { error: { code: string; details: { path: string }[] } };
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details.map((d) => d.path).sort()).toEqual(['controls', 'prompt', 'width']);
  });

  it('passes the parsed request, defaults applied, to the handler', async () => {
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'a house',
        controls: [{ type: 'canny', image: 'https://example.com/a.png' }],
      }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      steps: 20,
      guidance_scale: 9,
      controls: [{ params: { low: 100 } }],
    });
  });
});
