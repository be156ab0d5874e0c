/** HTTP helpers that run the same in Workers and Node. */

/** A response body was (or declared itself) larger than the caller's limit. */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  constructor(
    readonly limit: number,
    /** The declared `content-length`, when that is what gave it away. */
    readonly declared?: number,
  ) {
    super(
      declared === undefined
        ? `body exceeds ${limit} bytes`
        : `body is ${declared} bytes, the limit is ${limit}`,
    );
  }
}

/** Options of {@link readBodyLimited}. */
export interface ReadBodyOptions {
  /** Aborting it stops the read (a slow-drip sender), rejecting with {@link BodyReadAbortedError}. */
  signal?: AbortSignal;
}

/** The body read was stopped by its signal (usually a deadline) before the body ended. */
export class BodyReadAbortedError extends Error {
  override readonly name = 'BodyReadAbortedError';
  constructor(readonly reason: unknown) {
    super(
      reason instanceof Error && reason.name === 'TimeoutError' ? 'body read timed out' : 'body read aborted',
    );
  }
}

/**
 * Reads a body (a response's, or a request's) into memory, refusing more than `maxBytes`: first by the
 * declared length, then while streaming (a sender may lie or send no length), cancelling the stream as soon
 * as it is over. Takes anything with `headers` and `body`, so requests go through the same bound.
 */
export async function readBodyLimited(
  response: Pick<Response, 'headers' | 'body'>,
  maxBytes: number,
  options: ReadBodyOptions = {},
): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw new BodyTooLargeError(maxBytes, declared);
  }
  if (!response.body) return new Uint8Array();
  const { signal } = options;
  const reader = response.body.getReader();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new BodyReadAbortedError(signal?.reason));
  });
  aborted.catch(() => undefined);
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw new BodyTooLargeError(maxBytes);
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
export * from './ssrf.ts';
