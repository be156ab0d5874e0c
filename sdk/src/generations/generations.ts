import type {
  ControlUnitInput,
  Generation,
  GenerationEvent,
  GenerationList,
  GenerationRequestInput,
  GenerationStatus,
} from '@contour/shared/contracts';
import {
  ApiError,
  ConnectionError,
  ContourError,
  GenerationFailedError,
  TimeoutError,
} from '../errors/errors.ts';
import { backoffDelay, sleep } from '../http/retry.ts';
import type { RequestOptions, Transport } from '../http/transport.ts';
import { readServerSentEvents } from '../streaming/sse.ts';
import { encodeImages, type ImageInput, type WithImageInputs } from '../uploads/uploads.ts';

/** `generations.create` input: the API request, where images may also be Blobs or bytes. */
export type GenerationCreateParams = Omit<GenerationRequestInput, 'controls' | 'init_image' | 'mask'> & {
  controls: WithImageInputs<ControlUnitInput>[];
  /** img2img / inpaint: the image to start from. */
  init_image?: ImageInput;
  /** Inpaint: white = repaint. Needs `init_image`. */
  mask?: ImageInput;
};

/** Statuses a generation never leaves. */
export const TERMINAL_GENERATION_STATUSES: readonly GenerationStatus[] = ['succeeded', 'failed', 'canceled'];
/** How often `run` polls `GET /v1/generations/:id` when the event stream is unavailable, in milliseconds. */
export const POLL_INTERVAL_MS = 1_000;
/** Reconnects of one event stream without any new event before `stream` gives up. */
export const MAX_STREAM_RECONNECTS = 5;

/** `generations.list` filters. */
export interface GenerationListParams {
  /** Page size (the API caps it). */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
}

/** `GET /v1/generations` page (the shared contract's type). */
export type { GenerationList };

/** A page of generations that is also an async iterable over every generation on this and later pages. */
export interface GenerationPage extends GenerationList, AsyncIterable<Generation> {}

/** Progress of a running generation: denoising steps done out of the total (over all images). */
export interface GenerationProgress {
  generationId: string;
  step: number;
  total: number;
}

/** Options of `generations.create`. */
export interface CreateOptions extends RequestOptions {
  /** Seconds the API may hold the response open waiting for the result (`Prefer: wait=N`, max 60). */
  wait?: number;
}

/** Options of `generations.stream`. */
export interface StreamOptions extends RequestOptions {
  /** Resume after this event (`sequence`); events up to it are not replayed. */
  lastEventId?: string | number;
}

/** Options of `generations.run` and `generations.wait`. */
export interface RunOptions extends RequestOptions {
  /** Called on each progress event (and on each polled change when streaming is unavailable). */
  onProgress?: (progress: GenerationProgress) => void;
  /** Called with every event received over the stream. */
  onEvent?: (event: GenerationEvent) => void;
  /** Longest time to wait for the result, in milliseconds (default: no limit); then a `TimeoutError`. */
  maxWaitMs?: number;
  /** Cancel the generation on the API when `signal` aborts (default true: nobody is waiting for it). */
  cancelOnAbort?: boolean;
  /** Skip the event stream and poll (for environments whose proxies buffer SSE). */
  poll?: boolean;
}

function isTerminal(status: GenerationStatus): boolean {
  return TERMINAL_GENERATION_STATUSES.includes(status);
}

function path(id: string, suffix = ''): string {
  return `/v1/generations/${encodeURIComponent(id)}${suffix}`;
}

/** Stream failures that polling can work around (as opposed to 4xx answers or aborts). */
function streamUnavailable(error: unknown): boolean {
  return (
    error instanceof ConnectionError ||
    error instanceof TimeoutError ||
    (error instanceof ApiError && error.status >= 500) ||
    error instanceof StreamUnavailableError
  );
}

/** The response was not `text/event-stream` (a proxy in between rewrote it). */
export class StreamUnavailableError extends ContourError {}

/** `contour.generations`: create, follow, cancel and list generations. */
export class Generations {
  constructor(private readonly transport: Transport) {}

  /** `POST /v1/generations`: validates and queues a generation (an `Idempotency-Key` is added for you). */
  async create(params: GenerationCreateParams, options: CreateOptions = {}): Promise<Generation> {
    const encoded = encodeImages(params, (copy) => copy.controls as Record<string, unknown>[], 'control_', [
      'init_image',
      'mask',
    ]);
    const headers: Record<string, string> = {};
    if (options.wait !== undefined) headers['prefer'] = `wait=${Math.max(0, Math.floor(options.wait))}`;
    return this.transport.json<Generation>(
      { method: 'POST', path: '/v1/generations', body: encoded.body, headers },
      options,
    );
  }

  /** `GET /v1/generations/:id`. */
  async get(id: string, options: RequestOptions = {}): Promise<Generation> {
    return this.transport.json<Generation>({ method: 'GET', path: path(id) }, options);
  }

  /** `POST /v1/generations/:id/cancel`: stops a queued or running generation (its hold is released). */
  async cancel(id: string, options: RequestOptions = {}): Promise<Generation> {
    return this.transport.json<Generation>({ method: 'POST', path: path(id, '/cancel') }, options);
  }

  /**
   * `GET /v1/generations`: the caller's generations, newest first. The page is async-iterable:
   * `for await (const g of await contour.generations.list())` walks every later page too.
   */
  async list(params: GenerationListParams = {}, options: RequestOptions = {}): Promise<GenerationPage> {
    const page = await this.transport.json<GenerationList>(
      { method: 'GET', path: '/v1/generations', query: { limit: params.limit, cursor: params.cursor } },
      options,
    );
    const next = (cursor: string) => this.list({ ...params, cursor }, options);
    return {
      ...page,
      async *[Symbol.asyncIterator]() {
        let current: GenerationList = page;
        for (;;) {
          yield* current.data;
          if (!current.has_more || !current.next_cursor) return;
          current = await next(current.next_cursor);
        }
      },
    };
  }

  /**
   * `GET /v1/generations/:id/events` as an async iterator of events, in order, ending after the terminal
   * one. A dropped connection is resumed from the last event seen (`Last-Event-ID`), so no step is lost
   * or repeated.
   */
  async *stream(id: string, options: StreamOptions = {}): AsyncGenerator<GenerationEvent> {
    let lastEventId = options.lastEventId === undefined ? undefined : String(options.lastEventId);
    let reconnects = 0;
    for (;;) {
      const headers: Record<string, string> = { ...options.headers };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const response = await this.transport.open(
        { method: 'GET', path: path(id, '/events'), accept: 'text/event-stream', headers },
        options,
      );
      const type = response.headers.get('content-type') ?? '';
      if (!type.startsWith('text/event-stream') || !response.body) {
        await response.body?.cancel();
        throw new StreamUnavailableError(
          `Expected text/event-stream from ${path(id, '/events')}, got "${type}"`,
        );
      }
      try {
        for await (const message of readServerSentEvents(response.body, options.signal)) {
          if (!message.data) continue;
          const event = JSON.parse(message.data) as GenerationEvent;
          if (message.id !== undefined) lastEventId = message.id;
          reconnects = 0;
          yield event;
          if (
            event.type === 'generation.succeeded' ||
            event.type === 'generation.failed' ||
            event.type === 'generation.canceled'
          ) {
            return;
          }
        }
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        // A connection reset mid-stream surfaces as a TypeError from the body reader; resume below.
        if (!(error instanceof TypeError) && !(error instanceof Error && error.name === 'TypeError'))
          throw error;
      }
      if (reconnects >= MAX_STREAM_RECONNECTS) {
        throw new ConnectionError(`The event stream of ${id} kept closing before the generation finished`);
      }
      await sleep(backoffDelay(reconnects++), options.signal);
    }
  }

  /**
   * Waits for a generation to finish, reporting progress: follows the event stream, and falls back to
   * polling when streaming is unavailable. Resolves with the succeeded generation; throws
   * `GenerationFailedError` for failed or canceled ones.
   */
  async wait(id: string, options: RunOptions = {}): Promise<Generation> {
    const { signal: callerSignal, maxWaitMs, cancelOnAbort = true } = options;
    const controller = new AbortController();
    const abort = () => controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) abort();
    callerSignal?.addEventListener('abort', abort, { once: true });
    const deadline =
      maxWaitMs === undefined
        ? undefined
        : setTimeout(
            () =>
              controller.abort(
                new TimeoutError(`Generation ${id} did not finish in ${maxWaitMs} ms`, maxWaitMs),
              ),
            maxWaitMs,
          );
    const inner = { ...options, signal: controller.signal };
    try {
      let generation: Generation | undefined;
      if (!options.poll) {
        try {
          generation = await this.follow(id, inner);
        } catch (error) {
          if (controller.signal.aborted || !streamUnavailable(error)) throw error;
        }
      }
      generation ??= await this.poll(id, inner);
      if (generation.status !== 'succeeded') throw new GenerationFailedError(generation);
      return generation;
    } catch (error) {
      if (callerSignal?.aborted && cancelOnAbort) {
        // Nobody waits for the result any more: stop paying for it (best effort, bounded).
        await this.cancel(id, { maxRetries: 0, timeoutMs: 5_000 }).catch(() => {});
      }
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      if (deadline !== undefined) clearTimeout(deadline);
      callerSignal?.removeEventListener('abort', abort);
    }
  }

  /** `create` then `wait`: the generation once it has finished, with progress along the way. */
  async run(params: GenerationCreateParams, options: RunOptions = {}): Promise<Generation> {
    const created = await this.create(params, options);
    if (isTerminal(created.status)) {
      if (created.status !== 'succeeded') throw new GenerationFailedError(created);
      return created;
    }
    return this.wait(created.id, { ...options, idempotencyKey: undefined });
  }

  private async follow(id: string, options: RunOptions): Promise<Generation | undefined> {
    for await (const event of this.stream(id, options)) {
      options.onEvent?.(event);
      if (event.type === 'generation.progress') {
        options.onProgress?.({ generationId: id, step: event.step, total: event.total });
      } else if ('generation' in event) {
        const { progress } = event.generation;
        options.onProgress?.({ generationId: id, step: progress.step, total: progress.total });
        return event.generation;
      }
    }
    return undefined;
  }

  private async poll(id: string, options: RunOptions): Promise<Generation> {
    let lastStep = -1;
    for (;;) {
      const generation = await this.get(id, options);
      if (generation.progress.step !== lastStep || isTerminal(generation.status)) {
        lastStep = generation.progress.step;
        options.onProgress?.({ generationId: id, ...generation.progress });
      }
      if (isTerminal(generation.status)) return generation;
      await sleep(POLL_INTERVAL_MS, options.signal);
    }
  }
}
