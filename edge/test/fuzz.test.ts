import { exports } from 'cloudflare:workers';
import { ErrorEnvelopeSchema } from '@contour/shared/contracts';
import { encodeJpeg, encodePng } from '@contour/shared/preprocess';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { manyScanJpeg, zeroPng16 } from '../../shared/test/hostile-images.ts';
import { createTestAccount, sharedTestAccount } from './support/accounts.ts';
import { syntheticImage, syntheticPngDataUrl, toBase64 } from './support/images.ts';

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

/** Longest any single request may take in these suites (a coarse bound: the edge must never hang on input). */
const REQUEST_BUDGET_MS = 15_000;

/** Sends one request and checks the contract every answer must keep: no 5xx, an envelope with a request id. */
async function checked(request: Request): Promise<number> {
  const started = Date.now();
  const response = await worker.fetch(request);
  expect(response.status, `${request.method} ${request.url}`).toBeLessThan(500);
  if (response.status >= 400) {
    const text = await response.text();
    const envelope = ErrorEnvelopeSchema.safeParse(JSON.parse(text));
    expect(envelope.success, text.slice(0, 300)).toBe(true);
    expect(envelope.data?.error.request_id).toBeTruthy();
  } else {
    await response.arrayBuffer();
  }
  expect(Date.now() - started, request.url).toBeLessThan(REQUEST_BUDGET_MS);
  return response.status;
}

/** Path segments: ids, broken and valid percent-escapes, unicode, traversal, very long. */
const segment = fc.oneof(
  fc.constantFrom(
    'gen_abcdefgh12',
    'gen_',
    '..',
    '.',
    '%',
    '%Z',
    '%ZZ',
    '%E0%A4%A',
    '%2e%2e',
    '%00',
    '%FF%FE',
    '~',
  ),
  fc.stringMatching(/^[A-Za-z0-9_%.-]{0,40}$/),
  fc.string({ unit: 'grapheme', maxLength: 10 }).map(encodeURIComponent),
  fc.nat({ max: 3000 }).map((n) => 'a'.repeat(n)),
);

const pathTemplates = [
  ['GET', '/v1/images/outputs/{}/0.png'],
  ['GET', '/v1/images/{}'],
  ['GET', '/v1/images/{}/{}/{}'],
  ['GET', '/v1/generations/{}'],
  ['GET', '/v1/generations/{}/events'],
  ['POST', '/v1/generations/{}/cancel'],
  ['POST', '/v1/webhooks/deliveries/{}/redeliver'],
  ['DELETE', '/v1/webhooks/endpoints/{}'],
  ['GET', '/v1/admin/accounts/{}'],
  ['GET', '/{}'],
  ['PUT', '/v1/{}'],
] as const;

/** Query values: numbers of every shape, escapes, long strings. */
const queryValue = fc.oneof(
  fc.constantFrom(
    '1.5',
    '-1',
    '0',
    '1e400',
    '99999999999999999999',
    'NaN',
    '0x10',
    '%ZZ',
    '',
    ' 5',
    '5 ',
    '١٢',
  ),
  fc.integer({ min: -(2 ** 53), max: 2 ** 53 }).map(String),
  fc.double().map(String),
  fc.string({ maxLength: 40 }).map(encodeURIComponent),
  fc.nat({ max: 5000 }).map((n) => 'x'.repeat(n)),
);

const queryTargets = [
  '/v1/webhooks/deliveries',
  '/v1/generations',
  '/v1/usage',
  '/v1/images/outputs/gen_abcdefgh12/0.png',
  '/v1/generations/gen_abcdefgh12/events',
] as const;

describe('fuzz: every input path is validated (paths, queries, media types, sizes)', () => {
  it('paths with broken escapes and odd segments never cause a 5xx', async () => {
    const { apiKey } = await sharedTestAccount();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...pathTemplates),
        fc.array(segment, { minLength: 3, maxLength: 3 }),
        async ([method, template], parts) => {
          let i = 0;
          const path = template.replace(/\{\}/g, () => parts[i++]!);
          await checked(
            new Request(`http://edge.test${path}`, {
              method,
              headers: { authorization: `Bearer ${apiKey}` },
            }),
          );
        },
      ),
      { numRuns: 300, seed: 2026_1202 },
    );
  }, 240_000);

  it('query strings of any shape never reach SQL or the signature check unvalidated', async () => {
    const { apiKey } = await sharedTestAccount();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...queryTargets),
        fc.array(
          fc.tuple(
            fc.constantFrom(
              'limit',
              'cursor',
              'status',
              'generation_id',
              'from',
              'to',
              'format',
              'exp',
              'sig',
              'after',
              'access_token',
            ),
            queryValue,
          ),
          { maxLength: 4 },
        ),
        fc.boolean(),
        async (path, params, authed) => {
          const query = params.map(([k, v]) => `${k}=${v}`).join('&');
          const headers: Record<string, string> = authed ? { authorization: `Bearer ${apiKey}` } : {};
          await checked(new Request(`http://edge.test${path}?${query}`, { headers }));
        },
      ),
      { numRuns: 300, seed: 2026_1203 },
    );
  }, 240_000);

  it('bodies of any media type and size, chunked or not, get 2xx/4xx envelopes', async () => {
    const { apiKey } = await sharedTestAccount();
    const routes = [
      '/v1/generations',
      '/v1/preprocess',
      '/v1/webhooks/endpoints',
      '/v1/client-tokens',
      '/v1/generations/gen_abcdefgh12/cancel',
      '/v1/webhooks/replicate?generation=gen_abcdefgh12',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.constantFrom(
          'application/json',
          'application/jsonx',
          'text/plain',
          'multipart/form-data; boundary=x',
          'application/x-www-form-urlencoded',
          '',
          'APPLICATION/JSON; charset=utf-8',
        ),
        fc.oneof(fc.constant(0), fc.nat({ max: 2048 }), fc.constantFrom(300 * 1024, 2 * 1024 * 1024)),
        fc.boolean(),
        async (path, type, size, streamed) => {
          const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
          if (type) headers['content-type'] = type;
          const bytes = new TextEncoder().encode('{"x":'.padEnd(size, ' '));
          const body = streamed
            ? new ReadableStream<Uint8Array>({
                start(controller) {
                  for (let at = 0; at < bytes.length; at += 65536)
                    controller.enqueue(bytes.subarray(at, at + 65536));
                  controller.close();
                },
              })
            : bytes;
          const init = { method: 'POST', headers, body, duplex: 'half' } as RequestInit;
          await checked(new Request(`http://edge.test${path}`, init));
        },
      ),
      { numRuns: 150, seed: 2026_1204 },
    );
  }, 240_000);
});

describe('fuzz: hostile and corrupt images', () => {
  const photo = syntheticImage(96, 64);
  const validFiles = [encodePng(photo), encodeJpeg(photo, 80)];

  /** Decode-cost attacks, and valid files with bytes flipped, cut or spliced. */
  const hostileImage = fc.oneof(
    fc
      .record({
        w: fc.integer({ min: 8, max: 4096 }),
        h: fc.integer({ min: 8, max: 4096 }),
        scans: fc.integer({ min: 1, max: 2500 }),
      })
      .map(({ w, h, scans }) => manyScanJpeg(w, h, scans)),
    fc
      .record({
        w: fc.integer({ min: 8, max: 1100 }),
        h: fc.integer({ min: 8, max: 1100 }),
        interlaced: fc.boolean(),
      })
      .map(({ w, h, interlaced }) => zeroPng16(w, h, interlaced)),
    fc
      .record({
        file: fc.constantFrom(...validFiles),
        at: fc.nat(),
        value: fc.integer({ min: 0, max: 255 }),
        cut: fc.nat(),
      })
      .map(({ file, at, value, cut }) => {
        const copy = file.slice(0, Math.max(8, file.length - (cut % 64)));
        copy[at % copy.length] = value;
        return copy;
      }),
  );

  it('never cause a 5xx or a request over its budget, at /v1/preprocess and /v1/generations', async () => {
    // Its own account: /v1/preprocess has a per-key bucket the other suites have spent.
    const { apiKey } = await createTestAccount();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(hostileImage, fc.boolean(), async (bytes, generate) => {
        const image = `data:image/${bytes[0] === 0xff ? 'jpeg' : 'png'};base64,${toBase64(bytes)}`;
        const body = generate
          ? { prompt: 'x', controls: [{ type: 'canny', image }], width: 256, height: 256, steps: 1 }
          : { type: 'canny', image };
        const status = await checked(
          new Request(`http://edge.test/v1/${generate ? 'generations' : 'preprocess'}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
        );
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }),
      { numRuns: 40, seed: 2026_1205 },
    );
    // The mix exercised both refusals and admitted images.
    expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
    expect([...statuses.keys()].some((s) => s < 300)).toBe(true);
  }, 240_000);
});
