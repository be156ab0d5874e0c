import {
  type ApiErrorBody,
  type WorkerJob,
  type WorkerMessage,
  WorkerMessageSchema,
} from '@contour/shared/contracts';
import { signRequest } from '@contour/shared/signing';
import type { Bindings, QueueMessage } from '../env.ts';
import type { StoredControlMap, StoredOutput } from '../generations/state.ts';
import { generationStub } from '../generations/stub.ts';
import { CONTENT_TYPES } from '../images/store.ts';
import { base64ToBytes } from '../lib/base64.ts';
import { acquire, parseWorkerPool, skipWorker, UNHEALTHY_COOLDOWN_MS, workerOrder } from './pool.ts';
import {
  createPrediction,
  ReplicateUnavailableError,
  replicateCall,
  replicateVersions,
} from './replicate.ts';

/** Queue redelivery delay: 5 s doubling per attempt, capped at 5 minutes, with up to 20% jitter. */
export function retryDelaySeconds(attempt: number): number {
  const base = Math.min(300, 5 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + Math.random() * 0.2));
}

/** Why a dispatch attempt did not finish the generation. */
type Outcome = { kind: 'done' } | { kind: 'retry'; reason: string; delayS?: number };

/** A request to a GPU worker, signed with the shared worker secret (jobs, cancels, preprocessing). */
export async function signedFetch(
  env: Bindings,
  url: string,
  path: string,
  method: string,
  body: string,
  signal?: AbortSignal,
): Promise<Response> {
  const headers = await signRequest({ method, path, body }, env.WORKER_SIGNING_SECRET);
  return fetch(`${url}${path}`, {
    method,
    body: method === 'GET' || method === 'DELETE' ? undefined : body,
    headers: { ...headers, 'content-type': 'application/json' },
    ...(signal ? { signal } : {}),
  });
}

/** Tells a worker to stop a job (best effort). */
async function cancelOnWorker(env: Bindings, url: string, jobId: string): Promise<void> {
  await signedFetch(env, url, `/v1/jobs/${encodeURIComponent(jobId)}`, 'DELETE', '').catch(() => undefined);
}

/** Yields the NDJSON lines of a streamed body. */
async function* ndjsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield line;
      newline = buffer.indexOf('\n');
    }
  }
  if (buffer.trim()) yield buffer.trim();
}

/** Stores a worker result's images in R2 and returns what the generation records (push and pull mode). */
export async function storeResult(
  env: Bindings,
  job: WorkerJob,
  result: Extract<WorkerMessage, { type: 'result' }>,
): Promise<{ outputs: StoredOutput[]; control_maps: StoredControlMap[]; steps: number }> {
  const extension = job.output_format;
  const outputs = await Promise.all(
    result.images.map(async (image) => {
      const key = `outputs/${job.generation_id}/${image.index}.${extension}`;
      await env.IMAGES.put(key, base64ToBytes(image.data_base64), {
        httpMetadata: { contentType: image.content_type || CONTENT_TYPES[extension] },
      });
      return {
        index: image.index,
        key,
        content_type: image.content_type,
        width: image.width,
        height: image.height,
      };
    }),
  );
  const control_maps = await Promise.all(
    result.control_maps.map(async (map) => {
      const key = `controls/${job.generation_id}/${map.index}.png`;
      await env.IMAGES.put(key, base64ToBytes(map.data_base64), {
        httpMetadata: { contentType: map.content_type },
      });
      return { index: map.index, type: job.controls[map.index]!.type, key };
    }),
  );
  return { outputs, control_maps, steps: result.steps };
}

/** Sends the job to one worker and relays its stream to the generation. */
async function runOnWorker(env: Bindings, url: string, job: WorkerJob): Promise<Outcome | 'next'> {
  const stub = generationStub(env, job.generation_id);
  const body = JSON.stringify(job);
  let response: Response;
  try {
    response = await signedFetch(env, url, '/v1/jobs', 'POST', body);
  } catch (error) {
    console.warn(`worker ${url} unreachable`, error);
    skipWorker(url, UNHEALTHY_COOLDOWN_MS);
    return 'next';
  }
  if (response.status === 429 || response.status === 503) {
    const retryAfter = Number(response.headers.get('retry-after') ?? 5);
    skipWorker(url, Math.max(1, retryAfter) * 1000);
    await response.body?.cancel();
    return 'next';
  }
  if (response.status >= 500) {
    skipWorker(url, UNHEALTHY_COOLDOWN_MS);
    await response.body?.cancel();
    return 'next';
  }
  if (!response.ok || !response.body) {
    // 4xx other than 429: the job itself is wrong for this pool (bad signature config, unknown head...).
    const envelope = (await response.json().catch(() => null)) as { error?: ApiErrorBody } | null;
    await stub.fail(
      envelope?.error ?? {
        code: 'backend_error',
        message: `GPU worker refused the job (${response.status})`,
        details: [],
        retryable: false,
      },
    );
    return { kind: 'done' };
  }
  const release = acquire(url);
  try {
    if (!(await stub.markStarted())) {
      await response.body.cancel();
      await cancelOnWorker(env, url, job.job_id);
      return { kind: 'done' };
    }
    for await (const line of ndjsonLines(response.body)) {
      const parsed = WorkerMessageSchema.safeParse(JSON.parse(line));
      if (!parsed.success) continue;
      const message = parsed.data;
      if (message.type === 'progress') {
        const { stop } = await stub.reportProgress(message.step, message.total);
        if (stop) {
          await cancelOnWorker(env, url, job.job_id);
          return { kind: 'done' };
        }
      } else if (message.type === 'result') {
        await stub.succeed(await storeResult(env, job, message));
        return { kind: 'done' };
      } else {
        if (message.code === 'canceled') return { kind: 'done' };
        if (message.retryable) return { kind: 'retry', reason: `${message.code}: ${message.message}` };
        await stub.fail({ code: message.code, message: message.message, details: [], retryable: false });
        return { kind: 'done' };
      }
    }
    return { kind: 'retry', reason: `worker ${url} ended the stream without a result` };
  } catch (error) {
    skipWorker(url, UNHEALTHY_COOLDOWN_MS);
    return { kind: 'retry', reason: `stream from ${url} broke: ${String(error)}` };
  } finally {
    release();
  }
}

/** Which backends a deployment dispatches to (`DISPATCH_BACKEND`). */
export type DispatchBackend = 'gpu' | 'replicate' | 'gpu+replicate';

function dispatchBackend(env: Bindings): DispatchBackend {
  const value = env.DISPATCH_BACKEND;
  return value === 'replicate' || value === 'gpu+replicate' ? value : 'gpu';
}

/** Tries the pool's workers in order. */
async function dispatchToPool(env: Bindings, job: WorkerJob): Promise<Outcome> {
  const pool = parseWorkerPool(env.GPU_WORKERS);
  if (pool.length === 0) return { kind: 'retry', reason: 'no GPU workers configured' };
  for (const url of workerOrder(pool)) {
    const outcome = await runOnWorker(env, url, job);
    if (outcome !== 'next') return outcome;
  }
  return { kind: 'retry', reason: 'every GPU worker is busy or down' };
}

/** Starts the job as a Replicate prediction; its webhook finishes the generation. */
async function dispatchToReplicate(env: Bindings, job: WorkerJob, onlyBackend: boolean): Promise<Outcome> {
  const stub = generationStub(env, job.generation_id);
  const call = replicateCall(job, replicateVersions(env));
  if (typeof call === 'string' || !env.REPLICATE_API_TOKEN) {
    const reason = typeof call === 'string' ? call : 'Replicate is not configured';
    if (!onlyBackend) return { kind: 'retry', reason };
    await stub.fail({ code: 'model_not_available', message: reason, details: [], retryable: false });
    return { kind: 'done' };
  }
  if (!(await stub.markStarted())) return { kind: 'done' };
  try {
    const origin = env.PUBLIC_BASE_URL || job.controls[0]!.image.url.replace(/\/v1\/images\/.*$/, '');
    const prediction = await createPrediction(env, job, call, `${origin}/v1/webhooks/replicate`);
    await stub.attachPrediction({
      prediction_id: prediction.id,
      keep: call.keep,
      first_image: call.firstImage,
    });
    return { kind: 'done' };
  } catch (error) {
    if (error instanceof ReplicateUnavailableError) {
      return { kind: 'retry', reason: error.message, delayS: Math.max(1, Math.ceil(error.retryAfterS)) };
    }
    // 4xx from Replicate: the request itself is wrong for their model.
    await stub.fail({
      code: 'backend_error',
      message: `Replicate refused the job: ${String(error)}`,
      details: [],
      retryable: false,
    });
    return { kind: 'done' };
  }
}

/** Dispatches one job to the deployment's backend(s); returns whether the message must be retried. */
export async function dispatchJob(env: Bindings, job: WorkerJob): Promise<Outcome> {
  const state = await generationStub(env, job.generation_id).getState();
  if (!state || state.status === 'succeeded' || state.status === 'failed' || state.status === 'canceled') {
    return { kind: 'done' };
  }
  const backend = dispatchBackend(env);
  if (backend === 'replicate') return dispatchToReplicate(env, job, true);
  const outcome = await dispatchToPool(env, job);
  if (backend === 'gpu+replicate' && outcome.kind === 'retry' && !state.started_at) {
    // Overflow: the pool is busy or down, so the job goes to Replicate when it can run there.
    const overflow = await dispatchToReplicate(env, job, false);
    if (overflow.kind === 'done') return overflow;
  }
  return outcome;
}

/** The jobs queue consumer: one job per message; failures retry with backoff, then go to the DLQ. */
export async function consumeJobs(batch: MessageBatch<QueueMessage>, env: Bindings): Promise<void> {
  for (const message of batch.messages) {
    const outcome = await dispatchJob(env, message.body.job);
    if (outcome.kind === 'done') message.ack();
    else {
      console.warn(`job ${message.body.job.job_id} attempt ${message.attempts}: ${outcome.reason}`);
      message.retry({ delaySeconds: outcome.delayS ?? retryDelaySeconds(message.attempts) });
    }
  }
}

/** The dead-letter consumer: jobs that exhausted their retries fail, so their credits are released. */
export async function consumeDeadLetters(batch: MessageBatch<QueueMessage>, env: Bindings): Promise<void> {
  for (const message of batch.messages) {
    await generationStub(env, message.body.job.generation_id).fail({
      code: 'backend_unavailable',
      message: `No GPU worker could run the job after ${message.attempts} deliveries`,
      details: [],
      retryable: true,
    });
    message.ack();
  }
}
