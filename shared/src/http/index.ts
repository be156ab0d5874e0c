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

/**
 * Reads a response body into memory, refusing more than `maxBytes`: first by the declared length, then
 * while streaming (a server may lie or send no length), cancelling the stream as soon as it is over.
 */
export async function readBodyLimited(response: Response, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new BodyTooLargeError(maxBytes, declared);
  }
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw new BodyTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
