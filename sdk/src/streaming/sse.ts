import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One parsed Server-Sent Events message (`id`, `event`, `data`). */
export type ServerSentEvent = EventSourceMessage;

/**
 * Reads a `text/event-stream` body message by message. The SSE framing is parsed by
 * `eventsource-parser` (fetch-based, so it runs wherever the SDK does, unlike `EventSource`, which cannot
 * send an `Authorization` header). Aborting `signal` cancels the body.
 */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<ServerSentEvent> {
  const pending: ServerSentEvent[] = [];
  const parser = createParser({ onEvent: (event) => pending.push(event) });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      signal?.throwIfAborted();
      if (done) {
        parser.feed(decoder.decode());
        yield* pending.splice(0);
        return;
      }
      parser.feed(decoder.decode(value, { stream: true }));
      yield* pending.splice(0);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.cancel().catch(() => {});
  }
}
