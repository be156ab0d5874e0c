import * as tf from '@tensorflow/tfjs';
import { ClipError } from './errors.ts';

/** What identifies a cached prompt embedding: the text, the model that encoded it and the encoding options. */
export interface PromptCacheKey {
  /** Identity of the text encoder weights (e.g. checkpoint name or hash). */
  model: string;
  prompt: string;
  /** Anything else that changes the embedding (long-prompt mode, emphasis); '' by default. */
  variant?: string;
}

/** Counters of a {@link PromptEmbeddingCache}. */
export interface PromptCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  /** Bytes of the tensors held now. */
  bytes: number;
  entries: number;
}

interface Entry {
  tensor: tf.Tensor;
  bytes: number;
}

/**
 * Least-recently-used cache of prompt embeddings, bounded by the bytes of the tensors it holds. It keeps its own
 * references (tfjs clones share memory, so nothing is copied): callers own, and must dispose, every tensor they
 * pass in or get back.
 */
export class PromptEmbeddingCache {
  readonly maxBytes: number;
  private readonly entries = new Map<string, Entry>();
  private counters = { hits: 0, misses: 0, evictions: 0, bytes: 0 };

  constructor(options: { maxBytes: number }) {
    if (!Number.isFinite(options.maxBytes) || options.maxBytes < 0) {
      throw new ClipError(
        'clip_bad_cache_options',
        `maxBytes must be a non-negative number, got ${options.maxBytes}`,
      );
    }
    this.maxBytes = options.maxBytes;
  }

  /** A clone of the cached embedding (counted as a hit), or undefined (counted as a miss). */
  get<T extends tf.Tensor>(key: PromptCacheKey): T | undefined {
    const id = cacheId(key);
    const entry = this.entries.get(id);
    if (!entry) {
      this.counters.misses++;
      return undefined;
    }
    this.counters.hits++;
    // Re-insert to mark it most recently used.
    this.entries.delete(id);
    this.entries.set(id, entry);
    return tf.clone(entry.tensor) as T;
  }

  /** Stores a reference to `tensor` (the caller keeps its own); entries larger than maxBytes are not kept. */
  set(key: PromptCacheKey, tensor: tf.Tensor): void {
    const id = cacheId(key);
    this.remove(id);
    const bytes = tensor.size * (tensor.dtype === 'bool' ? 1 : 4);
    if (bytes > this.maxBytes) return;
    this.entries.set(id, { tensor: tf.keep(tf.clone(tensor)), bytes });
    this.counters.bytes += bytes;
    for (const [oldest] of this.entries) {
      if (this.counters.bytes <= this.maxBytes) break;
      this.remove(oldest);
      this.counters.evictions++;
    }
  }

  /** The cached embedding, or `compute()`'s result, stored for next time. */
  async getOrCompute<T extends tf.Tensor>(key: PromptCacheKey, compute: () => T | Promise<T>): Promise<T> {
    const cached = this.get<T>(key);
    if (cached) return cached;
    const fresh = await compute();
    this.set(key, fresh);
    return fresh;
  }

  /** Current counters. */
  get stats(): PromptCacheStats {
    return { ...this.counters, entries: this.entries.size };
  }

  /** Hits over lookups, 0 before any lookup. */
  get hitRate(): number {
    const lookups = this.counters.hits + this.counters.misses;
    return lookups === 0 ? 0 : this.counters.hits / lookups;
  }

  /** Disposes every cached tensor (counters are kept). */
  clear(): void {
    for (const id of [...this.entries.keys()]) this.remove(id);
  }

  private remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.counters.bytes -= entry.bytes;
    entry.tensor.dispose();
  }
}

function cacheId({ model, prompt, variant = '' }: PromptCacheKey): string {
  return JSON.stringify([model, variant, prompt]);
}
