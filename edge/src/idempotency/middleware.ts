import { errorEnvelope } from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import type { MiddlewareHandler } from 'hono';
import { accountStub, type StoredResponse } from '../accounts/object.ts';
import type { AppEnv } from '../env.ts';
import { ApiError } from '../lib/errors.ts';

/** How long a duplicate waits for the first request with its key to finish before it gets 409. */
export const IDEMPOTENCY_WAIT_MS = 20_000;
/** Poll interval while waiting. */
export const IDEMPOTENCY_POLL_MS = 50;
/** Longest accepted `Idempotency-Key`. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Response headers kept with a stored response and replayed. */
export const REPLAYED_HEADERS = ['content-type', 'location', 'preference-applied', 'retry-after'];
/** Responses larger than this are not stored (a duplicate then gets 409 rather than a replay). */
export const MAX_STORED_BODY_BYTES = 512 * 1024;

/**
 * Whether a response is kept for replay. Like Stripe: results of requests that ran are kept, errors
 * included (a 402 replays as a 402); transient refusals (429, 409 conflicts) and server errors are not,
 * so the same key can be retried.
 */
export function isReplayable(status: number): boolean {
  return status < 500 && status !== 429 && status !== 409;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `Idempotency-Key` on authenticated POSTs, with Stripe's semantics: the first response is stored and
 * replayed for 24 h (`Idempotent-Replayed: true`); the same key with another method, path or body is 422
 * `idempotency_mismatch`; a duplicate that arrives while the first is running waits for it, or gets 409
 * `idempotency_conflict` after {@link IDEMPOTENCY_WAIT_MS}. Keys are scoped to the account and claimed in
 * its Durable Object, so concurrent duplicates are serialized and the work (and its charge) happens once.
 */
export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = c.req.header('idempotency-key');
  const auth = c.get('auth');
  if (c.req.method !== 'POST' || key === undefined || !auth) return next();
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw new ApiError(
      'invalid_request',
      `Idempotency-Key must be 1..${MAX_IDEMPOTENCY_KEY_LENGTH} characters`,
      [{ path: 'Idempotency-Key', message: 'bad length' }],
    );
  }
  const body = new Uint8Array(await c.req.raw.clone().arrayBuffer());
  const url = new URL(c.req.url);
  const fingerprint = await sha256Hex(
    `${c.req.method} ${url.pathname}${url.search}\n${c.req.header('content-type') ?? ''}\n${await sha256Hex(body)}`,
  );
  const account = accountStub(c.env, auth.accountId);
  const deadline = Date.now() + IDEMPOTENCY_WAIT_MS;
  for (;;) {
    const claim = await account.idempotencyBegin(key, fingerprint);
    if (claim.state === 'proceed') break;
    if (claim.state === 'mismatch') {
      throw new ApiError(
        'idempotency_mismatch',
        'This Idempotency-Key was used with a different request; use a new key for a new request',
      );
    }
    if (claim.state === 'replay') return replay(claim.response);
    if (Date.now() >= deadline) {
      throw new ApiError(
        'idempotency_conflict',
        'A request with this Idempotency-Key is still in progress',
        [],
        {
          'retry-after': '1',
        },
      );
    }
    await sleep(IDEMPOTENCY_POLL_MS);
  }
  let stored: StoredResponse | null = null;
  try {
    await next();
    const response = c.res;
    if (
      isReplayable(response.status) &&
      !response.headers.get('content-type')?.includes('text/event-stream')
    ) {
      const text = await response.clone().text();
      stored =
        text.length <= MAX_STORED_BODY_BYTES
          ? {
              status: response.status,
              headers: REPLAYED_HEADERS.flatMap((name) => {
                const value = response.headers.get(name);
                return value === null ? [] : [[name, value] as [string, string]];
              }),
              body: text,
            }
          : // Too big to keep: duplicates learn that the request ran rather than running it again.
            {
              status: 409,
              headers: [['content-type', 'application/json']] as [string, string][],
              body: JSON.stringify(
                errorEnvelope(
                  'idempotency_conflict',
                  'A request with this Idempotency-Key already ran; its response is too large to replay',
                ),
              ),
            };
    }
  } finally {
    await account.idempotencyFinish(key, stored);
  }
};

function replay(stored: { status: number; headers: string[][]; body: string }): Response {
  const headers = new Headers(stored.headers as [string, string][]);
  headers.set('idempotent-replayed', 'true');
  return new Response(stored.body, { status: stored.status, headers });
}
