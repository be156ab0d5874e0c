import * as tf from '@tensorflow/tfjs';
import { gaussianNoise } from '../pipelines/noise.ts';
import { type ClipTextConfig, ClipTextModel, type ClipTextWeights } from '../text/model.ts';
import { tokenizePrompt } from '../text/prompt.ts';
import type { ClipTokenizer } from '../text/tokenizer.ts';

/** Seed of the frozen text encoder of the trained built-in model; changing it invalidates the trained weights. */
export const FROZEN_CLIP_SEED = 10_010;

/**
 * A frozen, seeded random CLIP text tower. The colour prompts need only distinguishable embeddings, which random
 * token + position embeddings and a causal block give; freezing it keeps the committed weights small (none).
 */
export function createFrozenClip(config: ClipTextConfig, seed = FROZEN_CLIP_SEED): ClipTextModel {
  const h = config.hidden_size;
  let stream = 0;
  const normal = (shape: number[], scale: number) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const values = gaussianNoise(seed, stream++, count);
    for (let i = 0; i < count; i++) values[i] = values[i]! * scale;
    return values;
  };
  const linear = (inputs: number, outputs: number) => ({
    w: tf.tensor2d(normal([inputs, outputs], 1 / Math.sqrt(inputs)), [inputs, outputs]),
    b: tf.zeros([outputs]) as tf.Tensor1D,
  });
  const norm = () => ({ gamma: tf.ones([h]) as tf.Tensor1D, beta: tf.zeros([h]) as tf.Tensor1D });
  const weights: ClipTextWeights = {
    tokenEmbedding: tf.tensor2d(normal([config.vocab_size, h], 1), [config.vocab_size, h]),
    positionEmbedding: tf.tensor2d(normal([config.max_position_embeddings, h], 0.5), [
      config.max_position_embeddings,
      h,
    ]),
    layers: Array.from({ length: config.num_hidden_layers }, () => ({
      layerNorm1: norm(),
      q: linear(h, h),
      k: linear(h, h),
      v: linear(h, h),
      out: linear(h, h),
      layerNorm2: norm(),
      fc1: linear(h, config.intermediate_size),
      fc2: linear(config.intermediate_size, h),
    })),
    finalLayerNorm: norm(),
  };
  return new ClipTextModel(config, weights);
}

/** Prompt -> `last_hidden_state` [1, 77, hidden], computed once per distinct prompt (training sees few). */
export class PromptEmbeddings {
  private readonly cache = new Map<string, tf.Tensor3D>();
  constructor(
    private readonly clip: ClipTextModel,
    private readonly tokenizer: ClipTokenizer,
  ) {}

  /** The embedding of one prompt (owned by this cache). */
  get(prompt: string): tf.Tensor3D {
    let embedding = this.cache.get(prompt);
    if (!embedding) {
      const ids = tokenizePrompt(this.tokenizer, prompt).chunks[0]!.ids;
      embedding = tf.keep(this.clip.encode(ids) as tf.Tensor3D);
      this.cache.set(prompt, embedding);
    }
    return embedding;
  }

  /** [B, 77, hidden] for a batch of prompts. */
  batch(prompts: readonly string[]): tf.Tensor3D {
    return tf.tidy(
      () =>
        tf.concat(
          prompts.map((p) => this.get(p)),
          0,
        ) as tf.Tensor3D,
    );
  }

  /** Frees the cached embeddings (not the text model). */
  dispose(): void {
    tf.dispose([...this.cache.values()]);
    this.cache.clear();
  }
}
