import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.ts';

/**
 * Multiply-add FLOP tally of convolutions, linear layers and attention products (2 per multiply-add), for
 * benchmarks that relate step time to the backend's peak. Off unless `enabled`.
 */
export const flopCounter = { enabled: false, flops: 0 };

/** A layer's forward pass over NHWC tensors. */
export interface Layer4D {
  forward(x: tf.Tensor4D): tf.Tensor4D;
}

/** Conv2d with PyTorch semantics (symmetric explicit padding), weights `name.weight` / `name.bias`. */
export class Conv2d implements Layer4D {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    private readonly stride = 1,
    private readonly padding = kernel === 3 ? 1 : 0,
  ) {
    this.weight = params.declare(`${name}.weight`, [outChannels, inChannels, kernel, kernel]);
    this.bias = params.declare(`${name}.bias`, [outChannels]);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    const p = this.padding;
    if (flopCounter.enabled) {
      const [n, h, w, cin] = x.shape;
      const k = this.params.specs.get(this.weight)!;
      const outH = Math.floor((h + 2 * p - k[2]!) / this.stride) + 1;
      const outW = Math.floor((w + 2 * p - k[3]!) / this.stride) + 1;
      flopCounter.flops += 2 * n * outH * outW * k[0]! * cin * k[2]! * k[3]!;
    }
    const pad: 'valid' | [[0, 0], [number, number], [number, number], [0, 0]] =
      p === 0
        ? 'valid'
        : [
            [0, 0],
            [p, p],
            [p, p],
            [0, 0],
          ];
    return tf.fused.conv2d({
      x,
      filter: this.params.get(this.weight) as tf.Tensor4D,
      strides: this.stride,
      pad,
      bias: this.params.get(this.bias),
    });
  }
}

/** Linear layer over the last axis (any rank), weights `name.weight` [out, in] and optional `name.bias`. */
export class Linear {
  private readonly weight: string;
  private readonly bias: string | undefined;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inFeatures: number,
    private readonly outFeatures: number,
    hasBias = true,
  ) {
    this.weight = params.declare(`${name}.weight`, [outFeatures, inFeatures]);
    this.bias = hasBias ? params.declare(`${name}.bias`, [outFeatures]) : undefined;
  }

  forward<T extends tf.Tensor>(x: T): T {
    const shape = x.shape;
    const flat = x.reshape([-1, shape[shape.length - 1]!]) as tf.Tensor2D;
    if (flopCounter.enabled) flopCounter.flops += 2 * flat.shape[0] * flat.shape[1] * this.outFeatures;
    const out = tf.fused.matMul({
      a: flat,
      b: this.params.get(this.weight) as tf.Tensor2D,
      bias: this.bias === undefined ? undefined : this.params.get(this.bias),
    });
    return out.reshape([...shape.slice(0, -1), this.outFeatures]) as T;
  }
}

/** GroupNorm over NHWC, built from ops (the wasm backend has no GroupNorm kernel). */
export class GroupNorm implements Layer4D {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    private readonly channels: number,
    private readonly eps: number,
    private readonly groups = 32,
  ) {
    this.weight = params.declare(`${name}.weight`, [channels]);
    this.bias = params.declare(`${name}.bias`, [channels]);
  }

  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, h, w, c] = x.shape;
      const grouped = x.reshape([n, h * w, this.groups, c / this.groups]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      const normed = grouped
        .sub(mean)
        .mul(tf.rsqrt(variance.add(this.eps)))
        .reshape([n, h, w, this.channels]);
      return normed.mul(this.params.get(this.weight)).add(this.params.get(this.bias)) as tf.Tensor4D;
    });
  }
}

/** LayerNorm over the last axis. */
export class LayerNorm {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    channels: number,
    private readonly eps = 1e-5,
  ) {
    this.weight = params.declare(`${name}.weight`, [channels]);
    this.bias = params.declare(`${name}.bias`, [channels]);
  }

  forward<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return x
        .sub(mean)
        .mul(tf.rsqrt(variance.add(this.eps)))
        .mul(this.params.get(this.weight))
        .add(this.params.get(this.bias)) as T;
    });
  }
}

/** x * sigmoid(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => x.mul(tf.sigmoid(x)) as T);
}

/** Exact (erf) GELU, as torch.nn.functional.gelu. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5) as T);
}

/** Nearest-neighbour x2 upsampling (F.interpolate scale_factor=2, mode 'nearest'). */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [h * 2, w * 2], false, false);
}

/**
 * Attention strategy switch. The trainer sets `batchedOnWasm`: under backprop, one batched product beats the
 * per-entry loop (whose hundreds of small kernels and unstack/stack dominate a training step).
 */
export const attentionStrategy = { batchedOnWasm: false };

/**
 * softmax(q k^T * scale) v over [batch, tokens, dim] tensors. On wasm, one 2-D matMul pair per batch entry:
 * tfjs-backend-wasm sends only untransposed 2-D products to XNNPACK (batched ones take a slow generic loop,
 * 5-10x slower here), and per-entry tidies keep just one attention matrix alive at a time.
 */
export function scaledDotProductAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  scale: number,
): tf.Tensor3D {
  if (flopCounter.enabled) {
    const [batch, queries, dim] = q.shape;
    flopCounter.flops += 2 * 2 * batch * queries * k.shape[1] * dim;
  }
  return tf.tidy(() => {
    const scaledQ = q.mul(scale);
    if (tf.getBackend() !== 'wasm' || attentionStrategy.batchedOnWasm)
      return tf.matMul(tf.softmax(tf.matMul(scaledQ, k, false, true)), v) as tf.Tensor3D;
    const qs = tf.unstack(scaledQ) as tf.Tensor2D[];
    const kTs = tf.unstack(k.transpose([0, 2, 1])) as tf.Tensor2D[];
    const vs = tf.unstack(v) as tf.Tensor2D[];
    return tf.stack(
      qs.map((qi, i) => tf.tidy(() => tf.matMul(tf.softmax(tf.matMul(qi, kTs[i]!)), vs[i]!))),
    ) as tf.Tensor3D;
  });
}
