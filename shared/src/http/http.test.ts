import { describe, expect, it } from 'vitest';
import { BodyTooLargeError, readBodyLimited } from './index.ts';

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
});
