/**
 * A customer's webhook receiver for the edge tests. `POST /<scenario>/<inbox>` records the request and
 * answers by scenario: `ok` 200; `flaky2` 500 to the first two attempts of each webhook-id, then 200;
 * `fail` always 500. `GET /_inbox/<inbox>` returns what that inbox received, with the status answered.
 * Hostile image hosts for the image-URL tests: `GET /drip/<n>` sends PNG headers and then one byte every
 * 200 ms; `GET /redirect/<n>` answers 302 to a loopback address.
 */
import { createServer, type Server } from 'node:http';

/** One received request. */
export interface ReceivedWebhook {
  headers: Record<string, string>;
  body: string;
  answered: number;
}

/** Starts the receiver on a free loopback port. */
export async function startWebhookReceiver(): Promise<{ url: string; server: Server }> {
  const inboxes = new Map<string, ReceivedWebhook[]>();
  const server = createServer((request, response) => {
    const [, scenario = '', inbox = ''] = new URL(request.url ?? '/', 'http://x').pathname.split('/');
    if (request.method === 'GET' && scenario === 'drip') {
      response.writeHead(200, { 'content-type': 'image/png' });
      const timer = setInterval(() => response.write(Uint8Array.of(0x89)), 200);
      response.on('close', () => clearInterval(timer));
      return;
    }
    if (request.method === 'GET' && scenario === 'redirect') {
      response.writeHead(302, { location: 'http://127.0.0.1:1/secret' });
      response.end();
      return;
    }
    if (request.method === 'GET' && scenario === '_inbox') {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(inboxes.get(inbox) ?? []));
      return;
    }
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      const received = inboxes.get(inbox) ?? [];
      inboxes.set(inbox, received);
      const id = String(request.headers['webhook-id'] ?? '');
      const earlier = received.filter((r) => r.headers['webhook-id'] === id).length;
      const answered = scenario === 'ok' ? 200 : scenario === 'flaky2' ? (earlier < 2 ? 500 : 200) : 500;
      const headers = Object.fromEntries(
        Object.entries(request.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
      );
      received.push({ headers, body, answered });
      response.statusCode = answered;
      response.end(answered === 200 ? 'ok' : 'try again');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}
