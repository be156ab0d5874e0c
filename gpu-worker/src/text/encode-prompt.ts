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
  return tf.tidy(() => {
    const hidden = model.encode(prompt.chunks.map((chunk) => chunk.ids));
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
