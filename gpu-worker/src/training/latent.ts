import * as tf from '@tensorflow/tfjs';

/** Downsampling factor between image and latent (the pipeline's fixed 8). */
export const LATENT_FACTOR = 8;

/**
 * The fixed encoder of the tiny-latent model: per 8x8 block, the mean RGB (in [-1, 1]) and the grey-level spread
 * mapped to [-1, 1] (-1 on flat blocks, higher where an edge crosses the block). Images [B, H, W, 3] in [-1, 1]
 * -> latents [B, H/8, W/8, 4].
 */
export function imageToLatent(images: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const k = LATENT_FACTOR;
    const mean = tf.avgPool(images, k, k, 'valid');
    const grey = images.mean(3, true) as tf.Tensor4D;
    const greyMean = tf.avgPool(grey, k, k, 'valid');
    const greySquare = tf.avgPool(grey.square() as tf.Tensor4D, k, k, 'valid');
    const spread = tf.sqrt(tf.relu(greySquare.sub(greyMean.square())).add(1e-8));
    return tf.concat([mean, spread.mul(2).sub(1)], 3) as tf.Tensor4D;
  });
}
