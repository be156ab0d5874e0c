import * as tf from '@tensorflow/tfjs';
import type { Ops } from './ops.ts';

/**
 * Multiply-add FLOP tally of convolutions, linear layers and attention products (2 per multiply-add), for
 * benchmarks that relate step time to the backend's peak. Off unless `enabled`. Counted by every engine's ops
 * as they run (tfjs) or as they build a graph (ONNX: count a build, not a run).
 */
export const flopCounter = { enabled: false, flops: 0 };

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

/** The eager TensorFlow.js backend of {@link Ops}: NHWC images, gradients work through every op. */
export const tfOps: Ops<tf.Tensor> = {
  name: 'tfjs',
  scope: (fn) => tf.tidy(fn as () => tf.TensorContainer) as never,

  conv2d(x, weight, bias, stride, pad) {
    const x4 = x as tf.Tensor4D;
    if (flopCounter.enabled) {
      const [n, h, w, cin] = x4.shape;
      const [kh, kw, , cout] = weight.shape as number[];
      const outH = Math.floor((h + 2 * pad - kh!) / stride) + 1;
      const outW = Math.floor((w + 2 * pad - kw!) / stride) + 1;
      flopCounter.flops += 2 * n * outH * outW * cout! * cin * kh! * kw!;
    }
    return tf.fused.conv2d({
      x: x4,
      filter: weight as tf.Tensor4D,
      strides: stride,
      pad:
        pad === 0
          ? 'valid'
          : [
              [0, 0],
              [pad, pad],
              [pad, pad],
              [0, 0],
            ],
      bias,
    });
  },

  // Built from ops: the wasm backend has no GroupNorm kernel.
  groupNorm(x, gamma, beta, groups, eps) {
    return tf.tidy(() => {
      const [n, h, w, c] = x.shape as [number, number, number, number];
      const grouped = x.reshape([n, h * w, groups, c / groups]);
      const { mean, variance } = tf.moments(grouped, [1, 3], true);
      const normed = grouped
        .sub(mean)
        .mul(tf.rsqrt(variance.add(eps)))
        .reshape([n, h, w, c]);
      return normed.mul(gamma).add(beta);
    });
  },

  imageShape: (x) => x.shape as [number, number, number, number],
  toTokens(x) {
    const [n, h, w, c] = x.shape as number[];
    return x.reshape([n!, h! * w!, c!]);
  },
  fromTokens(x, h, w) {
    const [n, , c] = x.shape as number[];
    return x.reshape([n!, h, w, c!]);
  },
  addPerChannel(x, v) {
    const [n, c] = v.shape as number[];
    return x.add(v.reshape([n!, 1, 1, c!]));
  },
  concatChannels: (xs) => tf.concat(xs, 3),
  sliceChannels: (x, start, size) => x.slice([0, 0, 0, start], [-1, -1, -1, size]),
  upsampleNearest2x(x) {
    const [, h, w] = x.shape as number[];
    return tf.image.resizeNearestNeighbor(x as tf.Tensor4D, [h! * 2, w! * 2], false, false);
  },
  padBottomRight: (x, amount) =>
    tf.pad(x, [
      [0, 0],
      [0, amount],
      [0, amount],
      [0, 0],
    ]),

  shape: (x) => x.shape,
  linear(x, weight, bias) {
    const shape = x.shape;
    const outFeatures = weight.shape[1]!;
    const flat = x.reshape([-1, shape[shape.length - 1]!]) as tf.Tensor2D;
    if (flopCounter.enabled) flopCounter.flops += 2 * flat.shape[0] * flat.shape[1] * outFeatures;
    const out = tf.fused.matMul({ a: flat, b: weight as tf.Tensor2D, bias });
    return out.reshape([...shape.slice(0, -1), outFeatures]);
  },
  linearSplit(x, weight, bias, parts) {
    return tf.tidy(() => tf.split(tfOps.linear(x, weight, bias), parts, -1));
  },
  layerNorm(x, gamma, beta, eps) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return x
        .sub(mean)
        .mul(tf.rsqrt(variance.add(eps)))
        .mul(gamma)
        .add(beta);
    });
  },
  attention(q, k, v, scale, mask) {
    if (!mask) return scaledDotProductAttention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, scale);
    if (flopCounter.enabled) {
      const [batch, queries, dim] = q.shape as number[];
      flopCounter.flops += 2 * 2 * batch! * queries! * k.shape[1]! * dim!;
    }
    return tf.tidy(() => tf.matMul(tf.softmax(tf.add(tf.matMul(q.mul(scale), k, false, true), mask)), v));
  },
  multiHeadAttention(q, k, v, heads, scale) {
    return tf.tidy(() => {
      const [b, n, inner] = q.shape as [number, number, number];
      const dim = inner / heads;
      const split = (x: tf.Tensor) => {
        const [, tokens] = x.shape as [number, number];
        return x
          .reshape([b, tokens, heads, dim])
          .transpose([0, 2, 1, 3])
          .reshape([b * heads, tokens, dim]) as tf.Tensor3D;
      };
      return scaledDotProductAttention(split(q), split(k), split(v), scale)
        .reshape([b, heads, n, dim])
        .transpose([0, 2, 1, 3])
        .reshape([b, n, inner]);
    });
  },
  reshape: (x, shape) => x.reshape(shape),
  transpose: (x, perm) => x.transpose(perm),
  splitLast: (x, parts) => tf.split(x, parts, -1),
  embedding: (table, ids) => tf.gather(table, ids),
  constant: (value) => value,
  add: (a, b) => tf.add(a, b),
  sub: (a, b) => tf.sub(a, b),
  mul: (a, b) => tf.mul(a, b),
  mulScalar: (x, s) => x.mul(s),
  silu: (x) => tf.tidy(() => x.mul(tf.sigmoid(x))),
  gelu: (x) => tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5)),
  quickGelu: (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)))),
};
