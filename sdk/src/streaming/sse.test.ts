import { describe, expect, it } from 'vitest';
import { readServerSentEvents } from './sse.ts';

function chunked(text: string, size: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(offset, offset + size));
      offset += size;
    },
  });
}

const STREAM =
  ': contour event stream\nretry: 2000\n\n' +
  'id: 1\nevent: generation.queued\ndata: {"type":"generation.queued","label":"é ü"}\n\n' +
  'id: 2\nevent: generation.progress\ndata: {"type":"generation.progress","step":1}\n\n';

describe('readServerSentEvents', () => {
  it('yields the same messages whatever the chunk boundaries (even inside a UTF-8 character)', async () => {
    for (const size of [1, 2, 3, 7, 1000]) {
      const messages = [];
      for await (const message of readServerSentEvents(chunked(STREAM, size))) messages.push(message);
      expect(messages.map((m) => [m.id, m.event, JSON.parse(m.data).type])).toEqual([
        ['1', 'generation.queued', 'generation.queued'],
        ['2', 'generation.progress', 'generation.progress'],
      ]);
      expect(JSON.parse(messages[0]!.data).label).toBe('é ü');
    }
  });

  it('stops with the abort reason when the signal aborts mid-stream', async () => {
    const controller = new AbortController();
    const never = new ReadableStream<Uint8Array>({ start() {} });
    setTimeout(() => controller.abort(new Error('bye')), 20);
    const read = (async () => {
      for await (const _ of readServerSentEvents(never, controller.signal)) {
        // nothing arrives
      }
    })();
    await expect(read).rejects.toThrow('bye');
  });
});
