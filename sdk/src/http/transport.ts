import {
  ConnectionError,
  type ContourError,
  errorFromResponse,
  parseRetryAfter,
  TimeoutError,
} from '../errors/errors.ts';
import { backoffDelay, MAX_RETRY_AFTER_MS, RETRYABLE_STATUSES, sleep } from './retry.ts';

/** Per-call options every SDK method accepts. */
export interface RequestOptions {
  /** Aborts the call (and any retry wait); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Timeout of each HTTP attempt in milliseconds (default: the client's `timeoutMs`). */
  timeoutMs?: number;
  /** Retries for this call (default: the client's `maxRetries`). */
  maxRetries?: number;
  /** Idempotency key for POSTs; one is generated (and reused across retries) when absent. */
  idempotencyKey?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** How the client reaches the API; built once by `Contour`. */
export interface TransportConfig {
  baseUrl: string;
  fetch: typeof fetch;
  maxRetries: number;
  timeoutMs: number;
  headers: Record<string, string>;
  /** The bearer credential for a request (`undefined` sends none). */
  credential: (options: { refresh: boolean }) => Promise<string | undefined>;
  /** Whether a 401 may be cured by asking `credential` again with `refresh: true`. */
  canRefreshCredential: boolean;
}

/** One API call. */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  /** JSON-serialisable body, or a FormData (multipart) body. */
  body?: unknown;
  accept?: string;
  /** Extra headers (after the client's). */
  headers?: Record<string, string>;
}

/** A random RFC 4122 v4 id; `crypto.randomUUID` is missing outside secure browser contexts. */
export function randomIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const TIMEOUT = Symbol('timeout');

/**
 * An AbortController that follows `parent` and can also be aborted on its own (for the per-attempt
 * timeout). Written out because `AbortSignal.any` is missing from older runtimes the SDK supports.
 */
function childController(parent: AbortSignal | undefined) {
  const controller = new AbortController();
  const follow = () => controller.abort(parent?.reason);
  if (parent?.aborted) follow();
  else parent?.addEventListener('abort', follow, { once: true });
  return { controller, release: () => parent?.removeEventListener('abort', follow) };
}

async function readErrorBody(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => '');
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Sends requests with auth, timeouts, retries (backoff + jitter, `Retry-After`) and typed errors. */
export class Transport {
  constructor(readonly config: TransportConfig) {}

  /** The absolute URL of an API path. */
  url(path: string, query?: ApiRequest['query']): string {
    const url = new URL(path.replace(/^\//, ''), `${this.config.baseUrl.replace(/\/+$/, '')}/`);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  /** Sends a request and parses the JSON response. */
  async json<T>(request: ApiRequest, options: RequestOptions = {}): Promise<T> {
    return this.send(request, options, async (response) => (await response.json()) as T);
  }

  /**
   * Sends a request and returns the successful response before its body is read (for streams): the
   * per-attempt timeout stops once the headers have arrived.
   */
  async open(request: ApiRequest, options: RequestOptions = {}): Promise<Response> {
    return this.send(request, options, async (response) => response, true);
  }

  private async send<T>(
    request: ApiRequest,
    options: RequestOptions,
    read: (response: Response) => Promise<T>,
    streaming = false,
  ): Promise<T> {
    const maxRetries = options.maxRetries ?? this.config.maxRetries;
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    const headers: Record<string, string> = {
      accept: request.accept ?? 'application/json',
      ...this.config.headers,
      ...request.headers,
      ...options.headers,
    };
    let body: BodyInit | undefined;
    if (request.body instanceof FormData) body = request.body;
    else if (request.body !== undefined) {
      body = JSON.stringify(request.body);
      headers['content-type'] = 'application/json';
    }
    // One key for all attempts: that is what makes retrying a POST safe.
    if (request.method === 'POST')
      headers['idempotency-key'] = options.idempotencyKey ?? randomIdempotencyKey();
    const url = this.url(request.path, request.query);

    let refreshed = false;
    let refreshNow = false;
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      const credential = await this.config.credential({ refresh: refreshNow });
      refreshNow = false;
      const attemptHeaders = credential ? { ...headers, authorization: `Bearer ${credential}` } : headers;
      const { controller, release } = childController(options.signal);
      const timer = setTimeout(() => controller.abort(TIMEOUT), timeoutMs);
      let failure: ContourError;
      let delayMs: number | undefined;
      let opened = false;
      try {
        const response = await this.config.fetch(url, {
          method: request.method,
          headers: attemptHeaders,
          body,
          signal: controller.signal,
        });
        if (response.ok) {
          opened = streaming;
          return await read(response);
        }
        const error = errorFromResponse(response.status, response.headers, await readErrorBody(response));
        if (response.status === 401 && this.config.canRefreshCredential && !refreshed) {
          refreshed = true;
          refreshNow = true;
          attempt--;
          continue;
        }
        if (!RETRYABLE_STATUSES.has(response.status)) throw error;
        delayMs = parseRetryAfter(response.headers.get('retry-after'));
        // A wait longer than the caller would want is theirs to decide: surface it.
        if (delayMs !== undefined && delayMs > MAX_RETRY_AFTER_MS) throw error;
        failure = error;
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason;
        if (controller.signal.aborted && controller.signal.reason === TIMEOUT) {
          failure = new TimeoutError(
            `${request.method} ${request.path} timed out after ${timeoutMs} ms`,
            timeoutMs,
          );
        } else if (error instanceof TypeError || (error instanceof Error && error.name === 'TypeError')) {
          // fetch rejects with a TypeError for network failures in every runtime.
          failure = new ConnectionError(`Could not reach ${url}: ${error.message}`, { cause: error });
        } else {
          throw error;
        }
      } finally {
        clearTimeout(timer);
        // An opened stream keeps following the caller's signal until its body is done.
        if (!opened) release();
      }
      if (attempt >= maxRetries) throw failure;
      await sleep(delayMs ?? backoffDelay(attempt), options.signal);
    }
  }
}
