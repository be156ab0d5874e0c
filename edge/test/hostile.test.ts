import { env } from 'cloudflare:workers';
import { type ClientToken, ErrorEnvelopeSchema } from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import { manyScanJpeg, zeroPng16 } from '../../shared/test/hostile-images.ts';
import { loadImageSource } from '../src/images/input.ts';
import { MAX_BODY_BYTES, MAX_SMALL_BODY_BYTES } from '../src/lib/body.ts';
import { callEdge, createTestAccount, jsonPost, sharedTestAccount, withKey } from './support/accounts.ts';
import { syntheticPngDataUrl, toBase64 } from './support/images.ts';

const image = syntheticPngDataUrl(32, 32);

/** Asserts a 4xx error envelope with a request id and returns its code. */
async function envelopeOf(response: Response, what: string): Promise<string> {
  expect(response.status, what).toBeGreaterThanOrEqual(400);
  expect(response.status, what).toBeLessThan(500);
  const text = await response.text();
  const parsed = ErrorEnvelopeSchema.safeParse(JSON.parse(text));
  expect(parsed.success, `${what}: ${text.slice(0, 200)}`).toBe(true);
  expect(parsed.data?.error.request_id, what).toBeTruthy();
  return parsed.data!.error.code;
}

/** A body streamed in chunks with no Content-Length (chunked transfer). */
function chunked(total: number, chunk = 1 << 20): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(chunk, total - sent);
      controller.enqueue(new Uint8Array(size).fill(0x20));
      sent += size;
    },
  });
}

describe('every input path is validated before use (no 500s)', () => {
  it('malformed percent-encoding in any path is a 4xx envelope', async () => {
    const { apiKey } = await sharedTestAccount();
    const cases: [string, string][] = [
      ['GET', '/v1/images/%ZZ'],
      ['GET', '/v1/images/outputs/gen_abcdefgh12/%E0%A4%A'],
      ['GET', '/v1/images/%2e%2e/%2e%2e/secret'],
      ['GET', '/v1/generations/%ZZ'],
      ['GET', '/v1/generations/%ZZ/events'],
      ['POST', '/v1/generations/%ZZ/cancel'],
      ['POST', '/v1/webhooks/deliveries/%ZZ/redeliver'],
      ['DELETE', '/v1/webhooks/endpoints/%ZZ'],
      ['GET', '/v1/%ZZ'],
      ['GET', '/%ZZ'],
      ['GET', `/v1/generations/${'%FF'.repeat(2000)}`],
    ];
    for (const [method, path] of cases) {
      await envelopeOf(await callEdge(path, withKey(apiKey, { method })), `${method} ${path}`);
    }
  });

  it('query numbers must be integers in range (never reach SQL otherwise)', async () => {
    const { apiKey } = await sharedTestAccount();
    for (const limit of [
      '1.5',
      '-1',
      '0',
      '1e400',
      '99999999999999999999',
      'NaN',
      'Infinity',
      '0x10',
      '%ZZ',
      '',
    ]) {
      for (const path of ['/v1/webhooks/deliveries', '/v1/generations']) {
        const response = await callEdge(`${path}?limit=${limit}`, withKey(apiKey));
        expect(await envelopeOf(response, `${path}?limit=${limit}`)).toBe('validation_failed');
      }
    }
    expect((await callEdge('/v1/webhooks/deliveries?limit=5', withKey(apiKey))).status).toBe(200);
    await envelopeOf(await callEdge('/v1/usage?from=yesterday', withKey(apiKey)), 'usage from');
    await envelopeOf(await callEdge('/v1/webhooks/deliveries?status=%00', withKey(apiKey)), 'status');
  });

  it('a multi-megabyte bare base64 image is validated in linear time (no regex stack overflow)', async () => {
    const { apiKey } = await sharedTestAccount();
    for (const source of [
      'A'.repeat(5_600_000),
      `${'A'.repeat(5_600_000)}!`,
      `data:image/png;base64,${'A'.repeat(5_600_000)}`,
    ]) {
      const response = await callEdge(
        '/v1/generations',
        withKey(apiKey, jsonPost({ prompt: 'x', controls: [{ type: 'canny', image: source }] })),
      );
      expect(['image_invalid', 'validation_failed']).toContain(await envelopeOf(response, source.slice(-8)));
    }
  });

  it('an image host that drips its body is image_fetch_failed at the deadline', async () => {
    const started = Date.now();
    await expect(
      loadImageSource(`${env.TEST_WEBHOOK_RECEIVER}/drip/x`, {
        path: 'controls.0.image',
        allowInsecureUrls: true,
        timeoutMs: 600,
      }),
    ).rejects.toMatchObject({ code: 'image_fetch_failed', message: expect.stringContaining('timed out') });
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(
      loadImageSource(`${env.TEST_WEBHOOK_RECEIVER}/redirect/x`, { path: 'image', allowInsecureUrls: true }),
    ).rejects.toMatchObject({ code: 'image_fetch_failed', message: expect.stringContaining('redirects') });
  });

  it('a body shorter than its Content-Length is a 4xx envelope, not a trace', async () => {
    const { apiKey } = await sharedTestAccount();
    const short = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"prompt":'));
        controller.close();
      },
    });
    let response: Response;
    try {
      response = await callEdge(
        '/v1/generations',
        withKey(apiKey, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': '5000' },
          body: short,
          duplex: 'half',
        } as RequestInit),
      );
    } catch {
      return; // the runtime refuses to send it at all: nothing reaches the app
    }
    await envelopeOf(response, 'short body');
  });
});

describe('body limits hold while streaming', () => {
  it('a chunked body over the limit is 413 on the image routes and on small JSON routes', async () => {
    const { apiKey } = await sharedTestAccount();
    const big = await callEdge(
      '/v1/generations',
      withKey(apiKey, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: chunked(MAX_BODY_BYTES + 2 * 1024 * 1024),
        duplex: 'half',
      } as RequestInit),
    );
    expect(await envelopeOf(big, 'chunked generations')).toBe('payload_too_large');
    for (const path of [
      '/v1/webhooks/endpoints',
      '/v1/client-tokens',
      '/v1/generations/gen_abcdefgh12/cancel',
    ]) {
      const response = await callEdge(
        path,
        withKey(apiKey, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: chunked(MAX_SMALL_BODY_BYTES + 1, 64 * 1024),
          duplex: 'half',
        } as RequestInit),
      );
      expect(await envelopeOf(response, path)).toBe('payload_too_large');
    }
  });

  it('JSON routes need Content-Type application/json (415 otherwise)', async () => {
    const { apiKey } = await sharedTestAccount();
    const body = JSON.stringify({
      prompt: 'x',
      controls: [{ type: 'canny', image }],
      url: 'https://example.com/h',
    });
    for (const path of ['/v1/generations', '/v1/preprocess', '/v1/webhooks/endpoints', '/v1/client-tokens']) {
      for (const type of [
        'text/plain',
        '',
        'application/jsonx',
        'application/json-patch+json',
        'text/json',
      ]) {
        const headers: Record<string, string> = type ? { 'content-type': type } : {};
        const response = await callEdge(path, withKey(apiKey, { method: 'POST', headers, body }));
        expect(await envelopeOf(response, `${path} ${type}`)).toBe('unsupported_media_type');
      }
    }
    const ok = await callEdge(
      '/v1/webhooks/endpoints',
      withKey(apiKey, jsonPost({ url: 'https://example.com/h' })),
    );
    expect(ok.status).toBe(201);
  });
});

describe('stored strings are bounded and never echoed at length', () => {
  it('a 422 echoes at most a few hundred characters of the input', async () => {
    const { apiKey } = await sharedTestAccount();
    const huge = 'k'.repeat(1_000_000);
    for (const body of [
      { prompt: 'x', controls: [{ type: 'canny', image }], [huge]: 1 },
      { prompt: 'x', controls: [{ type: 'canny', image }], metadata: { [huge]: 'v' } },
      { prompt: 'x', controls: [{ type: huge, image }] },
      { prompt: 'x', controls: new Array(5000).fill({ type: 'nope', image: 'bad' }) },
    ]) {
      const response = await callEdge('/v1/generations', withKey(apiKey, jsonPost(body)));
      const text = await response.clone().text();
      await envelopeOf(response, 'echo');
      expect(text.length).toBeLessThan(20_000);
    }
  });

  it('caps webhook URL length, endpoints per account and client-token origins', async () => {
    const account = await createTestAccount();
    const long = await callEdge(
      '/v1/webhooks/endpoints',
      withKey(account.apiKey, jsonPost({ url: `https://example.com/${'a'.repeat(3000)}` })),
    );
    expect(await envelopeOf(long, 'long url')).toBe('validation_failed');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const response = await callEdge(
        '/v1/webhooks/endpoints',
        withKey(account.apiKey, jsonPost({ url: `https://example.com/hook/${i}` })),
      );
      statuses.push(response.status);
      if (response.status >= 400) expect(await envelopeOf(response, 'endpoint 11')).toBe('conflict');
    }
    expect(statuses).toEqual([...new Array(10).fill(201), 409]);
    const origin = await callEdge(
      '/v1/client-tokens',
      withKey(account.apiKey, jsonPost({ origin: `https://${'a'.repeat(400)}.example`, max_spend: 10 })),
    );
    expect(await envelopeOf(origin, 'long origin')).toBe('validation_failed');
  });
});

describe('separate rate-limit buckets', () => {
  it('a client that polls up to its limit can still cancel', async () => {
    const account = await createTestAccount({ rate_limit: { limit: 3, period_s: 60 } });
    for (let i = 0; i < 3; i++) await callEdge('/v1/balance', withKey(account.apiKey));
    expect((await callEdge('/v1/balance', withKey(account.apiKey))).status).toBe(429);
    const cancel = await callEdge(
      '/v1/generations/gen_abcdefgh12/cancel',
      withKey(account.apiKey, { method: 'POST' }),
    );
    expect(cancel.status).toBe(404); // not rate limited: it reached the route
    expect(cancel.headers.get('ratelimit-policy')).toBe('120;w=60');
  });

  it('/v1/preprocess has its own tighter bucket (client tokens get 20 a minute)', async () => {
    const account = await createTestAccount();
    const origin = 'https://app.example';
    const minted = await callEdge(
      '/v1/client-tokens',
      withKey(account.apiKey, jsonPost({ origin, max_spend: 100 })),
    );
    const { token } = (await minted.json()) as ClientToken;
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) {
      const response = await callEdge(
        '/v1/preprocess',
        withKey(token, jsonPost({ type: 'canny', image, image_resolution: 256 }, { origin })),
      );
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses).toEqual([...new Array(20).fill(200), 429]);
    // The account's secret key still has its own preprocess bucket.
    const mine = await callEdge(
      '/v1/preprocess',
      withKey(account.apiKey, jsonPost({ type: 'canny', image, image_resolution: 256 })),
    );
    expect(mine.status).toBe(200);
  });
});

describe('decode cost is bounded at the edge', () => {
  it('refuses decode-cost attacks with a clear 422 and keeps heavy but valid images off the edge', async () => {
    const { apiKey } = await sharedTestAccount();
    const attack = `data:image/jpeg;base64,${toBase64(manyScanJpeg(4000, 4000, 2000))}`;
    const bodies: [string, unknown][] = [
      ['/v1/preprocess', { type: 'canny', image: attack }],
      ['/v1/generations', { prompt: 'x', controls: [{ type: 'canny', image: attack }] }],
    ];
    for (const [path, body] of bodies) {
      const response = await callEdge(path, withKey(apiKey, jsonPost(body)));
      expect(await envelopeOf(response, path)).toBe('image_too_large');
    }
    // 2048x2048 16-bit RGBA zeros: admitted by the worker, over what /v1/preprocess decodes at the edge.
    const heavy = `data:image/png;base64,${toBase64(zeroPng16(2048, 2048))}`;
    const preprocess = await callEdge(
      '/v1/preprocess',
      withKey(apiKey, jsonPost({ type: 'canny', image: heavy })),
    );
    const text = await preprocess.clone().text();
    expect(await envelopeOf(preprocess, 'heavy preprocess')).toBe('image_too_large');
    expect(text).toContain('decode work');
    // In a generation it is stored for the worker to preprocess: no control map made at the edge.
    const created = await callEdge(
      '/v1/generations',
      withKey(
        apiKey,
        jsonPost({
          prompt: 'x',
          controls: [{ type: 'canny', image: heavy }],
          width: 256,
          height: 256,
          steps: 1,
        }),
      ),
    );
    expect(created.status).toBe(202);
    expect(((await created.json()) as { control_maps: unknown[] }).control_maps).toEqual([]);
  });

  it('/healthz answers while the worst image the edge admits is preprocessed', async () => {
    const { apiKey } = await sharedTestAccount();
    // Just inside the /v1/preprocess budget: 1024x1024, 16-bit RGBA.
    const worst = `data:image/png;base64,${toBase64(zeroPng16(1024, 1024))}`;
    const work = callEdge('/v1/preprocess', withKey(apiKey, jsonPost({ type: 'canny', image: worst })));
    const health = await callEdge('/healthz');
    expect(health.status).toBe(200);
    const done = await work;
    expect(done.status).toBe(200);
    await done.arrayBuffer();
  });
});
