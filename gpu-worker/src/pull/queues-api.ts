/**
 * Client of the Cloudflare Queues HTTP pull-consumer API (documented at
 * developers.cloudflare.com/queues/configuration/pull-consumers): `POST .../messages/pull` leases a batch,
 * `POST .../messages/ack` acknowledges and/or retries leases. Every answer is the Cloudflare API envelope
 * `{ success, errors, messages, result }`. Pulls are short polls: an empty batch comes back at once.
 */

/** The documented bounds of a pull. */
export const MAX_PULL_BATCH = 100;
export const MAX_VISIBILITY_TIMEOUT_MS = 12 * 60 * 60_000;

/** One leased message, as the pull API returns it. */
export interface PulledMessage {
  id: string;
  /** base64 for the `json` and `bytes` content types, plain text for `text`. */
  body: string;
  timestamp_ms: number;
  attempts: number;
  lease_id: string;
  metadata?: Record<string, string>;
}

/** The `result` of an ack call. */
export interface AckResult {
  ackCount: number;
  retryCount: number;
  /** Per lease id: why it was not counted (e.g. an unknown lease). */
  warnings: Record<string, string>;
}

/** A failed API call: the envelope's first error (or the HTTP status when there was no envelope). */
export class QueuesApiError extends Error {
  override readonly name = 'QueuesApiError';
  constructor(
    readonly status: number,
    readonly code: number | null,
    message: string,
  ) {
    super(message);
  }

  /** Worth retrying later: rate limits and server-side failures. */
  get transient(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

/** Where the queue lives and how to authenticate (an API token with Queues read and write). */
export interface QueuesApiOptions {
  /** `https://api.cloudflare.com/client/v4` unless a test points it elsewhere. */
  baseUrl: string;
  accountId: string;
  queueId: string;
  apiToken: string;
  fetch?: typeof fetch;
  /** Per-call timeout (ms). */
  timeoutMs?: number;
}

interface Envelope<T> {
  success: boolean;
  errors: { code: number; message: string }[];
  messages: unknown[];
  result: T;
}

/** Decodes a pulled message's body by its content type (`CF-Content-Type` metadata, default json). */
export function decodeMessageBody(message: PulledMessage): unknown {
  const type = message.metadata?.['CF-Content-Type'] ?? 'json';
  if (type === 'text') return JSON.parse(message.body);
  if (type !== 'json') throw new Error(`message ${message.id} has content type ${type}; expected json`);
  return JSON.parse(Buffer.from(message.body, 'base64').toString('utf8'));
}

/** The pull and ack calls of one queue. */
export class QueuesPullClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: QueuesApiOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  private async call<T>(action: 'pull' | 'ack', body: unknown): Promise<T> {
    const { baseUrl, accountId, queueId, apiToken } = this.options;
    const url = `${baseUrl.replace(/\/+$/, '')}/accounts/${encodeURIComponent(accountId)}/queues/${encodeURIComponent(queueId)}/messages/${action}`;
    const response = await this.fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
    });
    const envelope = (await response.json().catch(() => null)) as Envelope<T> | null;
    if (!envelope || !response.ok || !envelope.success) {
      const first = envelope?.errors?.[0];
      throw new QueuesApiError(
        response.status,
        first?.code ?? null,
        `queues ${action} failed (${response.status}): ${first?.message ?? 'no error envelope'}`,
      );
    }
    return envelope.result;
  }

  /** Leases up to `batchSize` messages for `visibilityTimeoutMs`; unacked ones are redelivered after it. */
  async pull(batchSize: number, visibilityTimeoutMs: number): Promise<PulledMessage[]> {
    const result = await this.call<{ messages?: PulledMessage[] } | null>('pull', {
      batch_size: Math.min(MAX_PULL_BATCH, Math.max(1, batchSize)),
      visibility_timeout_ms: Math.min(MAX_VISIBILITY_TIMEOUT_MS, Math.max(1, visibilityTimeoutMs)),
    });
    return result?.messages ?? [];
  }

  /** Acknowledges leases (done with) and marks others for retry after `delay_seconds`. */
  async ack(
    acks: string[],
    retries: { lease_id: string; delay_seconds?: number }[] = [],
  ): Promise<AckResult> {
    const result = await this.call<Partial<AckResult> | null>('ack', {
      acks: acks.map((lease_id) => ({ lease_id })),
      retries,
    });
    return {
      ackCount: result?.ackCount ?? 0,
      retryCount: result?.retryCount ?? 0,
      warnings: result?.warnings ?? {},
    };
  }
}
