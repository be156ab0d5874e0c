import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { BackendError, initBackend } from './backend.ts';

describe('initBackend', () => {
  it('rejects an unknown forced backend with a typed error', async () => {
    const error = await initBackend({ force: 'gpu-magic' as never, log: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).code).toBe('backend_unknown');
  });

  it('loads the wasm backend from the installed package and is idempotent', async () => {
    const messages: string[] = [];
    const info = await initBackend({ force: 'wasm', log: (m) => messages.push(m) });
    expect(info).toEqual({ name: 'wasm', package: '@tensorflow/tfjs-backend-wasm' });
    expect(messages).toEqual(['tfjs backend: wasm (@tensorflow/tfjs-backend-wasm, forced)']);
    expect(tf.getBackend()).toBe('wasm');
    const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync());
    expect([...sum]).toEqual([4, 6]);
    expect(await initBackend({ force: 'cpu' })).toBe(info);
    expect(messages).toHaveLength(1);
  });
});
