import {
  PULL_CALLBACK_PREFIX,
  PullClaimRequestSchema,
  type PullClaimResponse,
  type PullEventResponse,
  PullEventSchema,
  type WorkerJob,
} from '@contour/shared/contracts';
import { NONCE_HEADER, verifyRequest } from '@contour/shared/signing';
import { type Context, Hono } from 'hono';
import { storeResult } from '../dispatch/consumer.ts';
import type { AppEnv } from '../env.ts';
import { generationStub } from '../generations/stub.ts';
import { ApiError } from '../lib/errors.ts';
import { parseJsonText, parseOr422 } from '../lib/schema.ts';

/** Largest callback body: a result carries its images inline (4 PNGs at 1024x768 fit with room). */
export const MAX_CALLBACK_BYTES = 48 * 1024 * 1024;

/**
 * Reads a worker callback: size cap, then the shared HMAC signature (the worker signs with the same secret
 * the edge signs jobs with), then the per-generation nonce so a captured callback cannot be replayed.
 */
async function verifiedJson(c: Context<AppEnv>, generationId: string): Promise<unknown> {
  const length = Number(c.req.header('content-length') ?? 0);
  if (length > MAX_CALLBACK_BYTES) {
    throw new ApiError('payload_too_large', `Callback bodies are limited to ${MAX_CALLBACK_BYTES} bytes`);
  }
  const body = new Uint8Array(await c.req.arrayBuffer());
  if (body.byteLength > MAX_CALLBACK_BYTES) {
    throw new ApiError('payload_too_large', `Callback bodies are limited to ${MAX_CALLBACK_BYTES} bytes`);
  }
  const url = new URL(c.req.url);
  const secrets = c.env.WORKER_SIGNING_SECRET.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const verdict = await verifyRequest(
    { method: c.req.method, path: url.pathname + url.search, body },
    c.req.raw.headers,
    secrets,
  );
  if (!verdict.ok) throw new ApiError('unauthenticated', `Callback signature refused: ${verdict.reason}`);
  const stub = generationStub(c.env, generationId);
  if (!(await stub.freshNonce(c.req.header(NONCE_HEADER) ?? ''))) {
    throw new ApiError('conflict', 'This signed callback was already received (replay)');
  }
  return parseJsonText(new TextDecoder().decode(body));
}

/**
 * Pull-mode callbacks from GPU workers (no inbound address needed on their side): `claim` decides whether a
 * delivered job may run, `events` takes heartbeats, progress, the result or the error of the claim holder.
 * Outside `/v1/*`, so API keys, rate limits and Idempotency-Key do not apply; the signature does.
 */
export const workerCallbackRoute = new Hono<AppEnv>()
  .post(`${PULL_CALLBACK_PREFIX}/:id/claim`, async (c) => {
    const generationId = c.req.param('id');
    const request = parseOr422(PullClaimRequestSchema, await verifiedJson(c, generationId));
    const result: PullClaimResponse = await generationStub(c.env, generationId).claimPull(request);
    return c.json(result);
  })
  .post(`${PULL_CALLBACK_PREFIX}/:id/events`, async (c) => {
    const generationId = c.req.param('id');
    const { claim_id, event } = parseOr422(PullEventSchema, await verifiedJson(c, generationId));
    const stub = generationStub(c.env, generationId);
    const answer = (stop: boolean, ack: boolean, reason: string) =>
      c.json({ stop, ack, reason } satisfies PullEventResponse);

    if (event.type === 'heartbeat' || event.type === 'progress') {
      const step = event.type === 'progress' ? { step: event.step, total: event.total } : undefined;
      const { stop } = await stub.pullReport(claim_id, step);
      return stop
        ? answer(true, true, 'the generation no longer needs this worker')
        : answer(false, false, 'ok');
    }
    const check = await stub.checkClaim(claim_id);
    if (check !== 'current') return answer(true, true, `claim is ${check}`);
    if (event.type === 'release') {
      await stub.releaseClaim(claim_id);
      return answer(true, false, 'released');
    }
    if (event.type === 'result') {
      const state = await stub.getState();
      const job: WorkerJob = state!.job;
      await stub.succeed(await storeResult(c.env, job, event));
      return answer(true, true, 'result recorded');
    }
    if (event.code === 'canceled') return answer(true, true, 'canceled');
    if (event.retryable) {
      await stub.releaseClaim(claim_id);
      return answer(true, false, `retryable: ${event.code}`);
    }
    await stub.fail({ code: event.code, message: event.message, details: [], retryable: false });
    return answer(true, true, 'failure recorded');
  });
