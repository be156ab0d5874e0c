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
/** Padding of an image: one amount for every side, or [top, bottom, left, right]. */
export type Pad2d = number | readonly [number, number, number, number];

/** Options of {@link Ops.conv}: PyTorch Conv2d's stride, padding, dilation and groups. */
export interface ConvOptions {
  stride?: number | readonly [number, number];
  pad?: Pad2d;
  dilation?: number;
  /** Groups (PyTorch `groups`); the weight is HWIO [kh, kw, in / groups, out]. */
  groups?: number;
}

/** [top, bottom, left, right] of a {@link Pad2d}. */
export function padSides(pad: Pad2d | undefined): [number, number, number, number] {
  if (pad === undefined) return [0, 0, 0, 0];
  if (typeof pad === 'number') return [pad, pad, pad, pad];
  return [pad[0], pad[1], pad[2], pad[3]];
}

/** Output size of a conv or pool window along one axis (PyTorch's formula, `ceil` for ceil_mode pools). */
export function windowOutput(
  size: number,
  kernel: number,
  stride: number,
  padBefore: number,
  padAfter: number,
  dilation = 1,
  ceil = false,
): number {
  const span = size + padBefore + padAfter - dilation * (kernel - 1) - 1;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  // PyTorch: with ceil_mode the last window must start inside the input or its leading padding.
  if (ceil && (out - 1) * stride >= size + padBefore) out--;
  return out;
}

/** How {@link Ops.resize} interpolates (PyTorch F.interpolate modes; bicubic with A = -0.75). */
export type ResizeMode = 'nearest' | 'bilinear' | 'bicubic';

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

  // Images, for the annotator networks (preprocessors).
  /** Conv2d with every PyTorch option (asymmetric padding, dilation, groups); bias optional. */
  conv(x: T, weight: tf.Tensor, bias: tf.Tensor | undefined, options?: ConvOptions): T;
  /**
   * ConvTranspose2d (PyTorch semantics: `pad` crops, `outputPad` extends bottom/right); weight as the
   * ParamStore holds PyTorch's [in, out, kh, kw]: [kh, kw, out, in].
   */
  convTranspose(
    x: T,
    weight: tf.Tensor,
    bias: tf.Tensor | undefined,
    stride: number,
    pad?: number,
    outputPad?: number,
  ): T;
  /** MaxPool2d; padding counts as -inf, `ceil` is ceil_mode. */
  maxPool(x: T, kernel: number, stride: number, pad?: Pad2d, ceil?: boolean): T;
  /** AvgPool2d (count_include_pad=True, no ceil_mode). */
  avgPool(x: T, kernel: number, stride: number, pad?: Pad2d): T;
  /** AdaptiveAvgPool2d to (h, w): bin i covers [floor(i*H/h), ceil((i+1)*H/h)). */
  adaptiveAvgPool(x: T, h: number, w: number): T;
  /** Per-channel x * scale + shift with weights [C] (a BatchNorm folded at load time). */
  channelAffine(x: T, scale: tf.Tensor, shift: tf.Tensor): T;
  /** InstanceNorm2d: each image's channels normalised over H, W (biased variance); affine when given. */
  instanceNorm(x: T, eps: number, gamma?: tf.Tensor, beta?: tf.Tensor): T;
  /** Pads an image: zeros (or `value`), reflection (ReflectionPad2d) or edge replication. */
  padImage(x: T, pad: Pad2d, mode?: 'constant' | 'reflect' | 'edge', value?: number): T;
  /** F.interpolate to (h, w): nearest (floor), bilinear or bicubic, with or without align_corners. */
  resize(x: T, h: number, w: number, mode: ResizeMode, alignCorners?: boolean): T;
  /** Rows [top, top + h) and columns [left, left + w) of an image. */
  cropImage(x: T, top: number, left: number, h: number, w: number): T;

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
  /** Concatenation of ordinary tensors along `axis` (tokens, e.g. a class token before patches). */
  concat(xs: T[], axis: number): T;
  /** `size` entries from `start` along `axis` of an ordinary tensor. */
  slice(x: T, axis: number, start: number, size: number): T;
  addScalar(x: T, s: number): T;
  div(a: T, b: T): T;
  relu(x: T): T;
  /** min(max(x, lo), hi) (ReLU6 is clip(x, 0, 6)). */
  clip(x: T, lo: number, hi: number): T;
  leakyRelu(x: T, alpha: number): T;
  elu(x: T): T;
  sigmoid(x: T): T;
  tanh(x: T): T;
  /** Element-wise square root. */
  sqrt(x: T): T;
  /** Softmax over the last axis. */
  softmax(x: T): T;
  /** x * sigmoid(x). */
  silu(x: T): T;
  /** Exact (erf) GELU. */
  gelu(x: T): T;
  /** x * sigmoid(1.702 x) (CLIP's quick_gelu). */
  quickGelu(x: T): T;
}
