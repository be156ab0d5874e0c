/**
 * A local fake of the Cloudflare Queues HTTP API for pull consumers, built from the documentation
 * (developers.cloudflare.com/queues/configuration/pull-consumers and the API reference):
 * - `POST /client/v4/accounts/{account}/queues/{queue}/messages` publishes `{ body, content_type }`;
 * - `.../messages/pull` `{ batch_size (default 5, max 100), visibility_timeout_ms (default 30 s, max 12 h) }`
 *   leases visible messages: `result.messages[] = { id, body, timestamp_ms, attempts, lease_id, metadata }`,
 *   `json` bodies base64-encoded, `attempts` counting deliveries; a short poll (empty batch at once);
 * - `.../messages/ack` `{ acks: [{ lease_id }], retries: [{ lease_id, delay_seconds? }] }` ->
 *   `{ ackCount, retryCount, warnings }`. Leases are permissive as documented: an ack after the visibility
 *   timeout, or after the message went to another consumer, still acknowledges it; a lease id never issued
 *   is not counted and gets a warning;
 * - unacked messages become visible again when their lease expires; after `max_retries` + 1 deliveries they
 *   go to the dead-letter list;
 * - every answer is the envelope `{ success, errors: [{ code, message }], messages, result }`; a missing or
 *   wrong token is 401 (code 10000), a bad body 400.
 * Test hooks under `/_test/`: state, duplicating a message (at-least-once delivery), expiring leases now, and
 * starting/killing a real GPU worker process. `/edge/*` relays HTTP requests (the worker's callbacks and image
 * fetches) to the test, which answers them with the real edge app inside workerd.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Token and ids the fake accepts. */
export const FAKE_QUEUES = {
  token: 'fake-queues-token',
  accountId: 'acc0123456789',
  queueId: 'q-contour-jobs-pull',
  maxRetries: 6,
} as const;

interface StoredMessage {
  id: string;
  body: string;
  contentType: 'json' | 'text';
  timestampMs: number;
  attempts: number;
  visibleAtMs: number;
  lease: { id: string; expiresAtMs: number } | null;
  state: 'pending' | 'acked' | 'dead';
}

interface RelayedRequest {
  id: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body_base64: string;
  respond: (status: number, headers: Record<string, string>, body: Buffer) => void;
}

const root = path.resolve(fileURLToPath(new URL('../../..', import.meta.url)));

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Starts the fake on a free loopback port. */
export async function startFakeQueues(): Promise<{ url: string; server: Server; stop: () => Promise<void> }> {
  const messages: StoredMessage[] = [];
  const leases = new Map<string, StoredMessage>();
  const ackLog: { lease_id: string; kind: 'ack' | 'retry'; counted: boolean; message_id?: string }[] = [];
  const relayQueue: RelayedRequest[] = [];
  const relayWaiters: ((request: RelayedRequest) => void)[] = [];
  const relayPending = new Map<string, RelayedRequest>();
  const workers: { child: ChildProcess; log: string[] }[] = [];
  let base = '';

  const envelope = (
    response: ServerResponse,
    status: number,
    result: unknown,
    errors: { code: number; message: string }[] = [],
  ) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ success: errors.length === 0, errors, messages: [], result }));
  };
  const json = (response: ServerResponse, status: number, value: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(JSON.stringify(value));
  };

  /** Leases lapse lazily: an expired lease makes its message visible again. */
  const expireLeases = (now: number) => {
    for (const message of messages) {
      if (message.state === 'pending' && message.lease && message.lease.expiresAtMs <= now) {
        message.lease = null;
      }
    }
  };

  const queuesApi = async (request: IncomingMessage, response: ServerResponse, url: URL, raw: Buffer) => {
    const match = /^\/client\/v4\/accounts\/([^/]+)\/queues\/([^/]+)\/messages(?:\/(pull|ack))?$/.exec(
      url.pathname,
    );
    if (!match || request.method !== 'POST') {
      return envelope(response, 404, null, [{ code: 7003, message: 'No route for the URI' }]);
    }
    if (request.headers.authorization !== `Bearer ${FAKE_QUEUES.token}`) {
      return envelope(response, 401, null, [{ code: 10000, message: 'Authentication error' }]);
    }
    if (match[1] !== FAKE_QUEUES.accountId || match[2] !== FAKE_QUEUES.queueId) {
      return envelope(response, 404, null, [{ code: 11000, message: 'Queue does not exist' }]);
    }
    let body: Record<string, unknown>;
    try {
      body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      return envelope(response, 400, null, [{ code: 10026, message: 'Could not parse request body' }]);
    }
    const now = Date.now();
    expireLeases(now);
    if (!match[3]) {
      const contentType = body['content_type'] === 'text' ? 'text' : 'json';
      const encoded =
        contentType === 'json'
          ? Buffer.from(JSON.stringify(body['body'])).toString('base64')
          : String(body['body'] ?? '');
      messages.push({
        id: randomBytes(16).toString('hex'),
        body: encoded,
        contentType,
        timestampMs: now,
        attempts: 0,
        visibleAtMs: now + Number(body['delay_seconds'] ?? 0) * 1000,
        lease: null,
        state: 'pending',
      });
      return envelope(response, 200, null);
    }
    if (match[3] === 'pull') {
      const batchSize = body['batch_size'] ?? 5;
      const visibility = body['visibility_timeout_ms'] ?? 30_000;
      if (!Number.isInteger(batchSize) || (batchSize as number) < 1 || (batchSize as number) > 100) {
        return envelope(response, 400, null, [{ code: 10026, message: 'batch_size must be 1..100' }]);
      }
      if (
        !Number.isInteger(visibility) ||
        (visibility as number) < 1 ||
        (visibility as number) > 43_200_000
      ) {
        return envelope(response, 400, null, [
          { code: 10026, message: 'visibility_timeout_ms must be <= 12h' },
        ]);
      }
      const out = [];
      for (const message of messages) {
        if (out.length >= (batchSize as number)) break;
        if (message.state !== 'pending' || message.lease || message.visibleAtMs > now) continue;
        if (message.attempts > FAKE_QUEUES.maxRetries) {
          message.state = 'dead';
          continue;
        }
        message.attempts += 1;
        const leaseId = `${randomBytes(8).toString('base64url')}..${randomBytes(24).toString('base64url')}`;
        message.lease = { id: leaseId, expiresAtMs: now + (visibility as number) };
        leases.set(leaseId, message);
        out.push({
          body: message.body,
          id: message.id,
          timestamp_ms: message.timestampMs,
          attempts: message.attempts,
          metadata: { 'CF-sourceMessageSource': 'worker', 'CF-Content-Type': message.contentType },
          lease_id: leaseId,
        });
      }
      const backlog = messages.filter((m) => m.state === 'pending').length;
      return envelope(response, 200, { message_backlog_count: backlog, messages: out });
    }
    const acks = Array.isArray(body['acks']) ? (body['acks'] as { lease_id?: unknown }[]) : [];
    const retries = Array.isArray(body['retries'])
      ? (body['retries'] as { lease_id?: unknown; delay_seconds?: unknown }[])
      : [];
    let ackCount = 0;
    let retryCount = 0;
    const warnings: Record<string, string> = {};
    for (const { lease_id } of acks) {
      const message = leases.get(String(lease_id));
      if (!message) {
        warnings[String(lease_id)] = 'lease not found';
        ackLog.push({ lease_id: String(lease_id), kind: 'ack', counted: false });
        continue;
      }
      if (message.state === 'pending') message.state = 'acked';
      message.lease = null;
      ackCount++;
      ackLog.push({ lease_id: String(lease_id), kind: 'ack', counted: true, message_id: message.id });
    }
    for (const { lease_id, delay_seconds } of retries) {
      const message = leases.get(String(lease_id));
      if (message?.state !== 'pending') {
        warnings[String(lease_id)] = message ? 'message already acknowledged' : 'lease not found';
        ackLog.push({ lease_id: String(lease_id), kind: 'retry', counted: false });
        continue;
      }
      // Only the current lease moves the message; a stale lease's retry must not disturb a newer holder.
      if (message.lease?.id === lease_id) {
        message.lease = null;
        message.visibleAtMs = now + Number(delay_seconds ?? 0) * 1000;
      }
      retryCount++;
      ackLog.push({ lease_id: String(lease_id), kind: 'retry', counted: true, message_id: message.id });
    }
    return envelope(response, 200, { ackCount, retryCount, warnings });
  };

  const testHooks = async (_request: IncomingMessage, response: ServerResponse, url: URL, raw: Buffer) => {
    const route = url.pathname.slice('/_test/'.length);
    if (route === 'state') {
      return json(response, 200, {
        messages: messages.map((m) => ({
          id: m.id,
          attempts: m.attempts,
          state: m.state,
          leased: Boolean(m.lease && m.lease.expiresAtMs > Date.now()),
        })),
        acks: ackLog,
        workers: workers.map((w) => ({
          pid: w.child.pid,
          exited: w.child.exitCode !== null || w.child.signalCode !== null,
        })),
      });
    }
    if (route === 'duplicate') {
      // At-least-once delivery: the same message (same id and body) handed out again while leased.
      const original = messages.find((m) => m.state === 'pending');
      if (!original) return json(response, 404, { error: 'nothing pending' });
      messages.push({ ...original, attempts: 0, lease: null, visibleAtMs: Date.now() });
      return json(response, 200, { duplicated: original.id });
    }
    if (route === 'expire-leases') {
      for (const message of messages) if (message.lease) message.lease.expiresAtMs = Date.now();
      return json(response, 200, { expired: true });
    }
    if (route === 'reset') {
      messages.length = 0;
      ackLog.length = 0;
      return json(response, 200, { reset: true });
    }
    if (route === 'worker/start') {
      const overrides = (raw.length ? JSON.parse(raw.toString('utf8')) : {}) as Record<string, string>;
      const log: string[] = [];
      const child = spawn(process.execPath, ['--import', 'tsx', 'gpu-worker/src/main.ts'], {
        cwd: root,
        env: {
          ...process.env,
          NODE_ENV: 'test',
          PORT: '0',
          HOST: '127.0.0.1',
          CONTOUR_MODE: 'pull',
          CONTOUR_BUILTIN_HEADS: 'canny',
          CLOUDFLARE_API_BASE_URL: `${base}/client/v4`,
          CLOUDFLARE_ACCOUNT_ID: FAKE_QUEUES.accountId,
          CONTOUR_PULL_QUEUE_ID: FAKE_QUEUES.queueId,
          CLOUDFLARE_QUEUES_TOKEN: FAKE_QUEUES.token,
          CONTOUR_EDGE_URL: `${base}/edge`,
          CONTOUR_PULL_IDLE_MS: '100',
          ...overrides,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const collect = (chunk: Buffer) => log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      workers.push({ child, log });
      return json(response, 200, { index: workers.length - 1, pid: child.pid });
    }
    const control = /^worker\/(\d+)\/(kill|term|log)$/.exec(route);
    const worker = control ? workers[Number(control[1])] : undefined;
    if (control && worker) {
      if (control[2] === 'log') return json(response, 200, { log: worker.log, exit: worker.child.exitCode });
      worker.child.kill(control[2] === 'kill' ? 'SIGKILL' : 'SIGTERM');
      return json(response, 200, { signaled: true });
    }
    return json(response, 404, { error: `no hook ${route}` });
  };

  const relay = (request: IncomingMessage, response: ServerResponse, url: URL, raw: Buffer) => {
    if (url.pathname === '/_relay/next') {
      const next = relayQueue.shift();
      const send = (r: RelayedRequest) => {
        const { respond: _respond, ...wire } = r;
        json(response, 200, wire);
      };
      if (next) return send(next);
      const timer = setTimeout(() => {
        relayWaiters.splice(relayWaiters.indexOf(waiter), 1);
        json(response, 204, null);
      }, 2000);
      const waiter = (r: RelayedRequest) => {
        clearTimeout(timer);
        send(r);
      };
      relayWaiters.push(waiter);
      return;
    }
    const reply = /^\/_relay\/reply\/([\w-]+)$/.exec(url.pathname);
    if (reply) {
      const pending = relayPending.get(reply[1]!);
      relayPending.delete(reply[1]!);
      const answer = JSON.parse(raw.toString('utf8')) as {
        status: number;
        headers: Record<string, string>;
        body_base64: string;
      };
      pending?.respond(answer.status, answer.headers, Buffer.from(answer.body_base64, 'base64'));
      return json(response, 200, { delivered: Boolean(pending) });
    }
    // /edge/...: hold the request until the test answers it.
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === 'string' && !['host', 'connection', 'content-length'].includes(name))
        headers[name] = value;
    }
    const held: RelayedRequest = {
      id: randomUUID(),
      method: request.method ?? 'GET',
      path: `${url.pathname.slice('/edge'.length)}${url.search}`,
      headers,
      body_base64: raw.toString('base64'),
      respond: (status, responseHeaders, body) => {
        response.writeHead(status, responseHeaders);
        response.end(body);
      },
    };
    relayPending.set(held.id, held);
    const waiter = relayWaiters.shift();
    if (waiter) waiter(held);
    else relayQueue.push(held);
  };

  const server = createServer((request, response) => {
    readBody(request).then(
      (raw) => {
        const url = new URL(request.url ?? '/', base);
        if (url.pathname.startsWith('/client/v4/')) return queuesApi(request, response, url, raw);
        if (url.pathname.startsWith('/_test/')) return testHooks(request, response, url, raw);
        if (url.pathname.startsWith('/_relay/') || url.pathname.startsWith('/edge/')) {
          return relay(request, response, url, raw);
        }
        json(response, 404, { error: 'no route' });
      },
      () => json(response, 400, { error: 'unreadable body' }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const stop = async () => {
    for (const { child } of workers)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url: base, server, stop };
}
