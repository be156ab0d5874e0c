import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { PromptEmbeddingCache } from './cache.ts';

beforeAll(async () => {
  await initBackend({ log: () => {} });
});

/** A [1, 77, 8] embedding (2464 bytes) filled with `value`. */
const embedding = (value: number) => tf.fill([1, 77, 8], value) as tf.Tensor3D;
const ENTRY_BYTES = 77 * 8 * 4;

describe('PromptEmbeddingCache', () => {
  it('evicts least recently used entries to stay under maxBytes', async () => {
    const before = tf.memory().numTensors;
    const cache = new PromptEmbeddingCache({ maxBytes: 3 * ENTRY_BYTES });
    for (const [i, prompt] of ['a', 'b', 'c'].entries()) {
      const tensor = embedding(i);
      cache.set({ model: 'm', prompt }, tensor);
      tensor.dispose();
    }
    expect(cache.stats).toMatchObject({ entries: 3, bytes: 3 * ENTRY_BYTES, evictions: 0 });
    tf.dispose(cache.get({ model: 'm', prompt: 'a' })); // 'a' becomes the most recent
    const d = embedding(3);
    cache.set({ model: 'm', prompt: 'd' }, d);
    d.dispose();
    expect(cache.stats).toMatchObject({ entries: 3, bytes: 3 * ENTRY_BYTES, evictions: 1 });
    expect(cache.get({ model: 'm', prompt: 'b' })).toBeUndefined();
    const a = cache.get({ model: 'm', prompt: 'a' })!;
    expect((await a.data())[0]).toBe(0);
    a.dispose();
    cache.clear();
    expect(cache.stats).toMatchObject({ entries: 0, bytes: 0 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keys by model and variant as well as prompt, and refuses entries larger than the bound', () => {
    const cache = new PromptEmbeddingCache({ maxBytes: ENTRY_BYTES });
    const tensor = embedding(1);
    cache.set({ model: 'sd15', prompt: 'cat' }, tensor);
    expect(cache.get({ model: 'other', prompt: 'cat' })).toBeUndefined();
    expect(cache.get({ model: 'sd15', prompt: 'cat', variant: 'chunks' })).toBeUndefined();
    const hit = cache.get({ model: 'sd15', prompt: 'cat' });
    expect(hit).toBeDefined();
    tf.dispose([hit!, tensor]);
    const big = tf.zeros([1, 154, 8]);
    cache.set({ model: 'sd15', prompt: 'long' }, big);
    big.dispose();
    expect(cache.stats).toMatchObject({ entries: 1, bytes: ENTRY_BYTES });
    expect(() => new PromptEmbeddingCache({ maxBytes: -1 })).toThrow(
      expect.objectContaining({ code: 'clip_bad_cache_options' }),
    );
    cache.clear();
  });

  it('counts hits and misses: a repeated negative prompt is computed once', async () => {
    const before = tf.memory().numTensors;
    const cache = new PromptEmbeddingCache({ maxBytes: 10 * ENTRY_BYTES });
    let computed = 0;
    const requests = Array.from({ length: 20 }, (_, i) => [`prompt ${i}`, 'lowres, bad anatomy']).flat();
    for (const prompt of requests) {
      const result = await cache.getOrCompute({ model: 'm', prompt }, () => {
        computed++;
        return embedding(computed);
      });
      result.dispose();
    }
    expect(computed).toBe(21);
    expect(cache.stats).toMatchObject({ hits: 19, misses: 21 });
    expect(cache.hitRate).toBeCloseTo(19 / 40);
    expect(cache.stats.bytes).toBeLessThanOrEqual(cache.maxBytes);
    cache.clear();
    expect(tf.memory().numTensors).toBe(before);
  });
});
