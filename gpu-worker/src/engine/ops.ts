import type * as tf from '@tensorflow/tfjs';

/**
 * The backend-neutral operations the models are written against. `T` is the backend's activation type (a
 * `tf.Tensor` on TensorFlow.js, a symbolic tensor in the ONNX graph builder). Weights are always the loaded
 * `tf.Tensor`s of a {@link ParamStore} in TensorFlow.js layout (conv kernels HWIO, linear weights [in, out]);
 * each backend turns them into what it needs.
 *
 * Feature maps ("images") are rank-4 in a layout the backend chooses (NHWC on tfjs, NCHW in ONNX graphs), so
 * the models touch them only through the image operations below; everything else is an ordinary tensor whose
 * shape {@link Ops.shape} reports.
 */
export interface Ops<T> {
  /** Name of the backend, for messages. */
  readonly name: string;
  /** Runs `fn`, freeing its intermediates where the backend tracks memory (tf.tidy on tfjs). */
  scope<R>(fn: () => R): R;

  // Images [N, H, W, C] (logical).
  /** Conv2d with PyTorch semantics: symmetric padding `pad`, weight HWIO, bias [out]. */
  conv2d(x: T, weight: tf.Tensor, bias: tf.Tensor, stride: number, pad: number): T;
  /** GroupNorm over an image, affine per channel. */
  groupNorm(x: T, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number): T;
  /** Logical [N, H, W, C] of an image. */
  imageShape(x: T): [number, number, number, number];
  /** [N, H, W, C] image -> [N, H*W, C] tokens. */
  toTokens(x: T): T;
  /** [N, H*W, C] tokens -> image of height h, width w. */
  fromTokens(x: T, h: number, w: number): T;
  /** Adds a per-image, per-channel vector [N, C] to an image. */
  addPerChannel(x: T, v: T): T;
  /** Concatenates images along channels. */
  concatChannels(xs: T[]): T;
  /** Channels [start, start + size) of an image. */
  sliceChannels(x: T, start: number, size: number): T;
  /** Nearest-neighbour x2 upsampling (F.interpolate scale 2, 'nearest'). */
  upsampleNearest2x(x: T): T;
  /** Zero padding of the bottom and right edges (the VAE encoder's asymmetric downsampling pad). */
  padBottomRight(x: T, amount: number): T;

  // Ordinary tensors.
  /** Logical shape of a tensor. */
  shape(x: T): number[];
  /** x @ W + b over the last axis, W [in, out] (any rank of x). */
  linear(x: T, weight: tf.Tensor, bias?: tf.Tensor): T;
  /** {@link linear} then {@link splitLast} into `parts` (GEGLU's projection); a backend may skip the split. */
  linearSplit(x: T, weight: tf.Tensor, bias: tf.Tensor | undefined, parts: number): T[];
  /** LayerNorm over the last axis. */
  layerNorm(x: T, gamma: tf.Tensor, beta: tf.Tensor, eps: number): T;
  /** softmax(q k^T * scale [+ mask]) v over [batch, tokens, dim]; mask [tokens_q, tokens_k] additive. */
  attention(q: T, k: T, v: T, scale: number, mask?: tf.Tensor): T;
  /**
   * {@link attention} per head over [batch, tokens, heads * dim] (heads split from and merged back into the last
   * axis), as ldm's CrossAttention; a backend may run it as one fused kernel.
   */
  multiHeadAttention(q: T, k: T, v: T, heads: number, scale: number): T;
  reshape(x: T, shape: number[]): T;
  transpose(x: T, perm: number[]): T;
  /** Splits the last axis into `parts` equal pieces. */
  splitLast(x: T, parts: number): T[];
  /** Rows of a table (a weight) by integer ids: [B, T] ids -> [B, T, dim]. */
  embedding(table: tf.Tensor, ids: T): T;
  /** A weight (or constant) as an activation, e.g. position embeddings. */
  constant(value: tf.Tensor): T;
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  mulScalar(x: T, s: number): T;
  /** x * sigmoid(x). */
  silu(x: T): T;
  /** Exact (erf) GELU. */
  gelu(x: T): T;
  /** x * sigmoid(1.702 x) (CLIP's quick_gelu). */
  quickGelu(x: T): T;
}
