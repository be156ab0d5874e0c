import {
  type ControlType,
  detailsFromZodError,
  ERROR_STATUS,
  type ErrorCode,
  errorEnvelope,
  WorkerJobSchema,
  type WorkerPreprocessRequest,
  WorkerPreprocessRequestSchema,
  type WorkerPreprocessResult,
} from '@contour/shared/contracts';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { stream } from 'hono/streaming';
import type { PreprocessorStatus } from '../preprocessors/registry.ts';
import { AUTH_FAILURE_MESSAGES, type RequestVerifier } from './auth.ts';
import { JobError } from './errors.ts';
import type { WorkerMetrics } from './metrics.ts';
import type { JobScheduler } from './scheduler.ts';

/** What /v1/models describes. */
export interface ModelsInfo {
  /**
   * `native_resolution`: the one resolution the base samples at (jobs are resized to and from it), or null;
   * `description` and `suggested` (a request it was made for) describe a built-in model, null otherwise.
   */
  base: {
    name: string;
    builtin: boolean;
    native_resolution: number | null;
    description: string | null;
    suggested: { prompt: string; steps: number; guidance_scale: number } | null;
  };
  heads: { control_type: ControlType; name: string; loaded: boolean }[];
  control_types: ControlType[];
  backend: string;
  /** The model runtime: `tfjs` or `onnxruntime`, its device and precision, and a detail line. */
  engine: { name: 'tfjs' | 'onnxruntime'; device: string; precision: 'fp32' | 'fp16'; detail: string };
  head_memory: { used_bytes: number; budget_bytes: number };
  /** The network preprocessors this worker has: weights installed (`available`) and loaded now. */
  preprocessors: PreprocessorStatus[];
}

/** The parts that exist once the models are loaded. */
export interface LoadedRuntime {
  scheduler: JobScheduler;
  /** False when the model thread has stopped. */
  healthy: () => boolean;
  models: () => ModelsInfo;
  /** The model runtime (also in /readyz). */
  engine: () => ModelsInfo['engine'];
  /** Runs one network preprocessor (`POST /v1/preprocess`). */
  preprocess: (request: WorkerPreprocessRequest, signal: AbortSignal) => Promise<WorkerPreprocessResult>;
}

/** Everything the HTTP layer talks to. */
export interface AppDependencies {
  verifier: RequestVerifier;
  metrics: WorkerMetrics;
  /** The scheduler and models; undefined while the models load. */
  runtime: () => LoadedRuntime | undefined;
  /** True once shutdown has begun (set before the models finish loading too). */
  stopping: () => boolean;
}

/** Largest job body accepted, in bytes. */
export const MAX_JOB_BYTES = 256 * 1024;

/** The envelope with the request's id (the edge's `x-request-id` when it sent one, else a fresh one). */
function errorResponse(
  c: Context,
  code: ErrorCode,
  message: string,
  options: Parameters<typeof errorEnvelope>[2] = {},
  headers: Record<string, string> = {},
): Response {
  const requestId = (c.get('requestId') as string | undefined) ?? crypto.randomUUID();
  return new Response(JSON.stringify(errorEnvelope(code, message, { ...options, requestId })), {
    status: ERROR_STATUS[code],
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
  });
}

/**
 * The worker's HTTP API: signed `POST /v1/jobs` streaming NDJSON WorkerMessages, signed
 * `DELETE /v1/jobs/:id`, health and readiness probes, Prometheus metrics and the served models.
 */
export function createApp(deps: AppDependencies): Hono {
  const app = new Hono();
  const { verifier, metrics } = deps;
  // Every error envelope carries a request id: the edge's (so logs join up) or one made here.
  app.use('*', requestId({ headerName: 'x-request-id' }));

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', (c) => {
    const runtime = deps.runtime();
    const problems: string[] = [];
    if (!runtime) problems.push('models are loading');
    if (deps.stopping()) problems.push('shutting down');
    if (runtime?.scheduler.full) problems.push('queue is full');
    if (runtime && !runtime.healthy()) problems.push('the model thread stopped');
    const body = {
      ready: problems.length === 0,
      problems,
      queue_depth: runtime?.scheduler.queueDepth ?? 0,
      engine: runtime?.engine() ?? null,
    };
    return c.json(body, problems.length === 0 ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.text(text, 200, { 'content-type': metrics.registry.contentType });
  });

  app.get('/v1/models', (c) => {
    const runtime = deps.runtime();
    if (!runtime) return errorResponse(c, 'backend_unavailable', 'models are loading', { retryable: true });
    return c.json(runtime.models());
  });

  /** Reads the body and checks the signature; a Response when refused. */
  const authenticate = async (c: Context, request: Request, path: string): Promise<Uint8Array | Response> => {
    const body = new Uint8Array(await request.arrayBuffer());
    const failure = await verifier.verify(request.method, path, body, request.headers);
    if (failure) return errorResponse(c, 'unauthenticated', AUTH_FAILURE_MESSAGES[failure]);
    return body;
  };

  /**
   * The signed, ready-worker, schema-checked body of a POST: the runtime and the parsed value, or the refusal
   * (401 signature, 503 loading or stopping, 400 bad JSON or schema with the fields at fault).
   */
  const acceptSigned = async <T>(
    c: Context,
    schema: {
      safeParse(
        raw: unknown,
      ): { success: true; data: T } | { success: false; error: Parameters<typeof detailsFromZodError>[0] };
    },
    what: string,
  ): Promise<{ runtime: LoadedRuntime; value: T } | Response> => {
    const url = new URL(c.req.url);
    const body = await authenticate(c, c.req.raw, url.pathname + url.search);
    if (body instanceof Response) return body;
    const runtime = deps.runtime();
    if (deps.stopping()) {
      return errorResponse(c, 'backend_unavailable', 'the worker is shutting down', { retryable: true });
    }
    if (!runtime) return errorResponse(c, 'backend_unavailable', 'models are loading', { retryable: true });
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return errorResponse(c, 'invalid_request', 'body is not valid JSON', {
        details: [{ path: '', message: 'invalid JSON' }],
      });
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const details = detailsFromZodError(parsed.error);
      const first = details[0];
      return errorResponse(
        c,
        'invalid_request',
        `invalid ${what}: ${first?.path || 'body'}: ${first?.message}`,
        {
          details,
        },
      );
    }
    return { runtime, value: parsed.data };
  };

  // Jobs reference images by URL, so bodies are small (queue messages are at most 128 KB): refuse big ones
  // before reading them, since this runs ahead of the signature check.
  const limitBody = bodyLimit({
    maxSize: MAX_JOB_BYTES,
    onError: (c) => errorResponse(c, 'payload_too_large', `job bodies are limited to ${MAX_JOB_BYTES} bytes`),
  });

  app.post('/v1/jobs', limitBody, async (c) => {
    const accepted = await acceptSigned(c, WorkerJobSchema, 'job');
    if (accepted instanceof Response) return accepted;
    const { scheduler } = accepted.runtime;
    let handle: ReturnType<JobScheduler['submit']>;
    try {
      handle = scheduler.submit(accepted.value);
    } catch (error) {
      if (!(error instanceof JobError)) throw error;
      const headers: Record<string, string> = {};
      if (error.code === 'queue_full') headers['retry-after'] = String(scheduler.retryAfterSeconds());
      return errorResponse(
        c,
        error.code,
        error.message,
        {
          details: error.details,
          retryable: error.retryable,
        },
        headers,
      );
    }
    c.header('content-type', 'application/x-ndjson');
    c.header('cache-control', 'no-store');
    return stream(c, async (out) => {
      // The caller went away: nobody will read the result, so stop the work.
      out.onAbort(() => {
        scheduler.cancel(handle.jobId);
      });
      for await (const message of handle.messages) {
        await out.write(`${JSON.stringify(message)}\n`);
      }
    });
  });

  app.post('/v1/preprocess', limitBody, async (c) => {
    const accepted = await acceptSigned(c, WorkerPreprocessRequestSchema, 'request');
    if (accepted instanceof Response) return accepted;
    const { runtime } = accepted;
    try {
      return c.json(await runtime.preprocess(accepted.value, c.req.raw.signal));
    } catch (error) {
      if (!(error instanceof JobError)) throw error;
      const details =
        error.code === 'model_not_available'
          ? [{ path: 'preprocessor', message: error.message }]
          : error.code.startsWith('image_')
            ? [{ path: 'image', message: error.message }]
            : undefined;
      return errorResponse(c, error.code, error.message, {
        ...(details ? { details } : {}),
        retryable: error.retryable,
      });
    }
  });

  app.delete('/v1/jobs/:id', limitBody, async (c) => {
    const url = new URL(c.req.url);
    const body = await authenticate(c, c.req.raw, url.pathname + url.search);
    if (body instanceof Response) return body;
    const jobId = c.req.param('id');
    const state = deps.runtime()?.scheduler.cancel(jobId);
    if (!state) return errorResponse(c, 'not_found', `job ${jobId} is not queued or running on this worker`);
    return c.json({ job_id: jobId, canceled: true, state });
  });

  app.notFound((c) => errorResponse(c, 'not_found', 'no such route'));
  app.onError((error, c) => {
    console.error('worker: unhandled error', error);
    return errorResponse(c, 'internal_error', 'internal error', { retryable: true });
  });
  return app;
}
