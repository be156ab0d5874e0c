import { exports } from 'cloudflare:workers';
import { ErrorEnvelopeSchema } from '@contour/shared/contracts';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sharedTestAccount } from './support/accounts.ts';
import { syntheticPngDataUrl } from './support/images.ts';

const worker = (exports as unknown as { default: { fetch(request: Request): Promise<Response> } }).default;
const image = syntheticPngDataUrl(32, 32);

const valid = {
  prompt: 'a house',
  controls: [{ type: 'canny', image, params: { low: 100, high: 200 }, strength: 1, start: 0, end: 1 }],
  width: 256,
  height: 256,
  steps: 1,
};

/** Any JSON value, including deep and odd ones. */
const anyJson = fc.jsonValue({ maxDepth: 4 });

/** A valid request with one field (possibly nested) replaced, removed or added. */
const mutatedRequest = fc
  .record({
    path: fc.constantFrom(
      'prompt',
      'negative_prompt',
      'controls',
      'controls.0',
      'controls.0.type',
      'controls.0.params',
      'controls.0.params.low',
      'controls.0.strength',
      'controls.0.start',
      'controls.0.end',
      'controls.0.image',
      'width',
      'height',
      'steps',
      'guidance_scale',
      'eta',
      'seed',
      'num_images',
      'scheduler',
      'output_format',
      'webhook',
      'metadata',
      'unknown_field',
    ),
    value: fc.oneof(
      anyJson,
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      fc.double(),
      fc.string({ maxLength: 3000 }),
      fc.constant(undefined),
    ),
  })
  .map(({ path, value }) => {
    const request = structuredClone(valid) as Record<string, unknown>;
    const keys = path.split('.');
    let target = request as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
    target[keys.at(-1)!] = value;
    return JSON.stringify(request);
  });

/** Raw bodies: broken JSON, arbitrary JSON, truncated valid JSON. */
const rawBody = fc.oneof(
  anyJson.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }),
  fc.nat({ max: 200 }).map((n) => JSON.stringify(valid).slice(0, n)),
  mutatedRequest,
);

const target = fc.record({
  path: fc.constantFrom('/v1/generations', '/v1/preprocess', '/v1/generations/gen_abcdefgh1234/cancel'),
  contentType: fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'multipart/form-data',
    '',
  ),
  body: rawBody,
});

describe('fuzz: malformed requests never cause a 5xx', () => {
  it('answers 2,000 generated malformed requests with 4xx envelopes', async () => {
    const account = await sharedTestAccount();
    let count = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(target, async ({ path, contentType, body }) => {
        count++;
        const headers: Record<string, string> = { authorization: `Bearer ${account.apiKey}` };
        if (contentType) headers['content-type'] = contentType;
        const response = await worker.fetch(
          new Request(`http://edge.test${path}`, { method: 'POST', headers, body }),
        );
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status).toBeLessThan(500);
        if (response.status >= 400) {
          const envelope = ErrorEnvelopeSchema.safeParse(await response.json());
          expect(envelope.success).toBe(true);
        } else {
          await response.body?.cancel();
        }
      }),
      { numRuns: 2000, seed: 20261124 },
    );
    expect(count).toBe(2000);
    // Most inputs are wrong, so 4xx must dominate.
    const fourXX = [...statuses].filter(([s]) => s >= 400).reduce((n, [, c]) => n + c, 0);
    expect(fourXX).toBeGreaterThan(1500);
  }, 240_000);
});
