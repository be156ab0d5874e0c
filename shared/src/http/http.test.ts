import { describe, expect, it } from 'vitest';
import { BodyReadAbortedError, BodyTooLargeError, readBodyLimited } from './index.ts';

const streamOf = (...chunks: number[]) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (const size of chunks) controller.enqueue(new Uint8Array(size).fill(7));
      controller.close();
    },
  });

describe('readBodyLimited', () => {
  it('reads a body within the limit', async () => {
    const bytes = await readBodyLimited(new Response(streamOf(3, 4)), 10);
    expect(bytes).toEqual(new Uint8Array(7).fill(7));
  });

  it('refuses by declared length and while streaming', async () => {
    const declared = new Response('x'.repeat(20), { headers: { 'content-length': '20' } });
    await expect(readBodyLimited(declared, 10)).rejects.toMatchObject({ declared: 20, limit: 10 });
    await expect(readBodyLimited(new Response(streamOf(6, 6)), 10)).rejects.toBeInstanceOf(BodyTooLargeError);
  });

  it('stops a slow-drip body at its deadline instead of waiting for it', async () => {
    let timer: ReturnType<typeof setInterval> | undefined;
    const drip = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setInterval(() => controller.enqueue(new Uint8Array(1)), 20);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    const started = Date.now();
    const read = readBodyLimited(new Response(drip), 1000, { signal: AbortSignal.timeout(100) });
    await expect(read).rejects.toBeInstanceOf(BodyReadAbortedError);
    await expect(read).rejects.toThrow('timed out');
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
