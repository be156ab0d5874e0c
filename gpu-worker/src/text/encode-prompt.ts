import * as tf from '@tensorflow/tfjs';
import type { ClipTextModel } from './model.ts';
import type { TokenizedPrompt } from './prompt.ts';

/**
 * Text conditioning for one prompt: `last_hidden_state` of each chunk, concatenated along the token axis
 * ([1, 77 * chunks, hidden]). With default options (one chunk, no weights) this is exactly `model.encode(ids)`.
 *
 * Emphasis follows Automatic1111: each chunk's hidden states are multiplied by their token weights, then the
 * whole chunk is rescaled so its mean equals the unweighted mean. (A1111 takes that mean over the batch of
 * prompts; here it is per prompt, so a prompt's embedding does not depend on what it is batched with.)
 */
export function encodeTokenizedPrompt(model: ClipTextModel, prompt: TokenizedPrompt): tf.Tensor3D {
  return tf.tidy(() => weightPromptStates(model.encode(prompt.chunks.map((chunk) => chunk.ids)), prompt));
}

/** The ids of a tokenized prompt's chunks as an int32 [chunks, tokens] tensor. */
export function promptIds(prompt: TokenizedPrompt): tf.Tensor2D {
  const length = prompt.chunks[0]?.ids.length ?? 0;
  const flat = new Int32Array(prompt.chunks.length * length);
  for (const [i, chunk] of prompt.chunks.entries()) flat.set(chunk.ids, i * length);
  return tf.tensor2d(flat, [prompt.chunks.length, length], 'int32');
}

/**
 * {@link encodeTokenizedPrompt} from hidden states [chunks, tokens, hidden] an engine computed for
 * {@link promptIds}: emphasis weighting and concatenation (does not dispose `hidden`).
 */
export function weightPromptStates(hidden: tf.Tensor3D, prompt: TokenizedPrompt): tf.Tensor3D {
  return tf.tidy(() => {
    const [chunks, length, width] = hidden.shape;
    let states: tf.Tensor3D = hidden;
    if (prompt.weighted) {
      const weights = tf.tensor3d(
        Float32Array.from(prompt.chunks.flatMap((chunk) => Array.from(chunk.weights))),
        [chunks, length, 1],
      );
      const originalMean = tf.mean(hidden, [1, 2], true);
      const weighted = tf.mul(hidden, weights);
      states = tf.mul(weighted, tf.div(originalMean, tf.mean(weighted, [1, 2], true)));
    }
    return states.reshape([1, chunks * length, width]);
  });
}
