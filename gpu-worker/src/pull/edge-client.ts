import {
  PULL_CALLBACK_PREFIX,
  type PullClaimRequest,
  type PullClaimResponse,
  PullClaimResponseSchema,
  type PullEvent,
  type PullEventResponse,
  PullEventResponseSchema,
} from '@contour/shared/contracts';
import { signRequest } from '@contour/shared/signing';

/** A callback the edge did not answer with a decision (network error, 5xx, refusal). */
export class EdgeCallbackError extends Error {
  override readonly name = 'EdgeCallbackError';
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }

  /** Network errors, 429 and 5xx may succeed on a later try; 4xx will not. */
  get transient(): boolean {
    return this.status === null || this.status === 429 || this.status >= 500;
  }
}

/** Options of {@link EdgeClient}. */
export interface EdgeClientOptions {
  /** The edge's public origin, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** Signs with the first; the edge accepts any of its configured secrets. */
  signingSecret: string;
  fetch?: typeof fetch;
  /** Tries per callback for transient failures (backoff 0.5 s doubling). */
  attempts?: number;
  timeoutMs?: number;
}

/** Signed pull-mode callbacks to the edge (outbound only: the worker needs no inbound address). */
export class EdgeClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: EdgeClientOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  private async post<T>(path: string, payload: unknown, parse: (value: unknown) => T): Promise<T> {
    const body = JSON.stringify(payload);
    const attempts = this.options.attempts ?? 4;
    let last: EdgeCallbackError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // A fresh signature (nonce) per try: the edge refuses a nonce it has seen.
      const headers = await signRequest({ method: 'POST', path, body }, this.options.signingSecret);
      try {
        const response = await this.fetch(`${this.options.baseUrl.replace(/\/+$/, '')}${path}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
        });
        const text = await response.text();
        if (response.ok) return parse(JSON.parse(text));
        last = new EdgeCallbackError(
          `edge answered ${response.status}: ${text.slice(0, 300)}`,
          response.status,
        );
      } catch (error) {
        if (error instanceof EdgeCallbackError) throw error;
        last = new EdgeCallbackError(`edge unreachable: ${String(error)}`, null);
      }
      if (!last.transient) throw last;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, 500 * 2 ** (attempt - 1)));
    }
    throw last;
  }

  /** Asks to run a delivered job: run (with a claim id), defer, or drop. */
  claim(generationId: string, request: PullClaimRequest): Promise<PullClaimResponse> {
    return this.post(`${PULL_CALLBACK_PREFIX}/${encodeURIComponent(generationId)}/claim`, request, (v) =>
      PullClaimResponseSchema.parse(v),
    );
  }

  /** Sends a heartbeat, progress, the result, an error, or gives the job back. */
  event(generationId: string, event: PullEvent): Promise<PullEventResponse> {
    return this.post(`${PULL_CALLBACK_PREFIX}/${encodeURIComponent(generationId)}/events`, event, (v) =>
      PullEventResponseSchema.parse(v),
    );
  }
}
