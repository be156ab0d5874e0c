/**
 * A local fake of the Replicate HTTP API for edge tests, built from their documented responses
 * (POST /v1/predictions and /v1/models/{owner}/{name}/predictions -> 201 prediction object with
 * `status: "starting"` and `urls`; GET /v1/predictions/{id}; POST /v1/predictions/{id}/cancel; 401 for
 * a bad token; 429 with Retry-After when throttled). Outputs are served from /files/.
 * A prompt containing "[ratelimit]" is throttled once with `Retry-After: 1`.
 */
import { createServer, type Server } from 'node:http';
import { encodePng } from '@contour/shared/preprocess';
import { FAKE_REPLICATE_TOKEN } from './replicate-constants.ts';

interface StoredPrediction {
  id: string;
  model: string;
  version: string | null;
  input: Record<string, unknown>;
  status: string;
  output: string[] | null;
  error: string | null;
  logs: string;
  created_at: string;
  webhook?: string;
  webhook_events_filter?: string[];
  urls: { get: string; cancel: string };
}

/** Starts the fake on a free loopback port. */
export async function startFakeReplicate(): Promise<{ url: string; server: Server }> {
  const predictions = new Map<string, StoredPrediction>();
  const throttled = new Set<string>();
  let counter = 0;
  let base = '';
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      const url = new URL(request.url ?? '/', base);
      const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify(value));
      };
      if (url.pathname.startsWith('/files/')) {
        const shade = Number(url.pathname.match(/(\d+)\.png$/)?.[1] ?? 0) * 40 + 30;
        const png = encodePng({
          width: 8,
          height: 8,
          channels: 3,
          data: new Uint8Array(8 * 8 * 3).fill(shade),
        });
        response.writeHead(200, { 'content-type': 'image/png' });
        response.end(Buffer.from(png));
        return;
      }
      if (url.pathname === '/_predictions') return json(200, [...predictions.values()]);
      if (request.headers.authorization !== `Bearer ${FAKE_REPLICATE_TOKEN}`) {
        return json(401, {
          title: 'Unauthenticated',
          detail: 'You did not pass a valid authentication token',
          status: 401,
        });
      }
      const create =
        url.pathname === '/v1/predictions' || /^\/v1\/models\/[^/]+\/[^/]+\/predictions$/.test(url.pathname);
      if (request.method === 'POST' && create) {
        const payload = JSON.parse(body) as {
          version?: string;
          input: Record<string, unknown>;
          webhook?: string;
          webhook_events_filter?: string[];
        };
        const prompt = String(payload.input['prompt'] ?? '');
        if (prompt.includes('[ratelimit]') && !throttled.has(prompt)) {
          throttled.add(prompt);
          return json(
            429,
            { title: 'Too Many Requests', detail: 'Request was throttled.', status: 429 },
            { 'retry-after': '1' },
          );
        }
        const id = `pred${String(++counter).padStart(6, '0')}`;
        const model = url.pathname.startsWith('/v1/models/')
          ? url.pathname.split('/').slice(3, 5).join('/')
          : 'unknown';
        const prediction: StoredPrediction = {
          id,
          model,
          version: payload.version ?? null,
          input: payload.input,
          status: 'starting',
          output: null,
          error: null,
          logs: '',
          created_at: new Date().toISOString(),
          webhook: payload.webhook,
          webhook_events_filter: payload.webhook_events_filter,
          urls: { get: `${base}/v1/predictions/${id}`, cancel: `${base}/v1/predictions/${id}/cancel` },
        };
        predictions.set(id, prediction);
        return json(201, prediction);
      }
      const match = url.pathname.match(/^\/v1\/predictions\/([^/]+)(\/cancel)?$/);
      const prediction = match ? predictions.get(match[1]!) : undefined;
      if (!prediction) return json(404, { title: 'Not found', detail: 'Not found.', status: 404 });
      if (match?.[2] && request.method === 'POST') prediction.status = 'canceled';
      return json(200, prediction);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  base = `http://127.0.0.1:${address.port}`;
  return { url: base, server };
}
