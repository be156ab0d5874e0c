import * as tf from '@tensorflow/tfjs';
import { interpolationMatrix } from './interpolation.ts';
import { type ConvOptions, type Ops, type Pad2d, padSides, windowOutput } from './ops.ts';

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

type Paddings = [[number, number], [number, number], [number, number], [number, number]];

function imagePaddings(pad: Pad2d | undefined): Paddings {
  const [t, b, l, r] = padSides(pad);
  return [
    [0, 0],
    [t, b],
    [l, r],
    [0, 0],
  ];
}

function countConv(x: tf.Tensor4D, weight: tf.Tensor, outH: number, outW: number) {
  if (!flopCounter.enabled) return;
  const [kh, kw, inPerGroup, cout] = weight.shape as number[];
  flopCounter.flops += 2 * x.shape[0] * outH * outW * cout! * inPerGroup! * kh! * kw!;
}

/** PyTorch Conv2d on NHWC (see {@link Ops.conv}). */
function convGeneral(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  o: ConvOptions,
): tf.Tensor4D {
  const [sh, sw] = typeof o.stride === 'number' ? [o.stride, o.stride] : (o.stride ?? [1, 1]);
  const dilation = o.dilation ?? 1;
  const groups = o.groups ?? 1;
  const [t, b, l, r] = padSides(o.pad);
  const [, h, w, cin] = x.shape;
  const [kh, kw, inPerGroup, cout] = weight.shape as [number, number, number, number];
  const outH = windowOutput(h, kh, sh, t, b, dilation);
  const outW = windowOutput(w, kw, sw, l, r, dilation);
  countConv(x, weight, outH, outW);
  return tf.tidy(() => {
    // tfjs refuses strides and dilations both above 1: convolve densely, then keep every stride-th output.
    const strided = dilation > 1 && (sh > 1 || sw > 1);
    const strides: [number, number] = strided ? [1, 1] : [sh, sw];
    const pad = imagePaddings([t, b, l, r]);
    let out: tf.Tensor4D;
    if (groups === 1) {
      out = tf.fused.conv2d({ x, filter: weight as tf.Tensor4D, strides, pad, dilations: dilation, bias });
    } else {
      // tfjs's depthwise and grouped convolutions take no explicit padding: pad first.
      const padded = t || b || l || r ? (tf.pad(x, pad) as tf.Tensor4D) : x;
      if (groups === cin && inPerGroup === 1) {
        const filter = weight.reshape([kh, kw, cin, cout / cin]) as tf.Tensor4D;
        out = tf.fused.depthwiseConv2d({
          x: padded,
          filter,
          strides,
          pad: 'valid',
          dilations: dilation,
          bias,
        });
      } else {
        const xs = tf.split(padded, groups, 3);
        const ws = tf.split(weight as tf.Tensor4D, groups, 3);
        out = tf.concat(
          xs.map((xi, g) =>
            tf.conv2d(xi as tf.Tensor4D, ws[g] as tf.Tensor4D, strides, 'valid', 'NHWC', dilation),
          ),
          3,
        ) as tf.Tensor4D;
        if (bias) out = out.add(bias) as tf.Tensor4D;
      }
    }
    if (strided)
      out = tf.stridedSlice(
        out,
        [0, 0, 0, 0],
        [out.shape[0], outH * sh, outW * sw, cout],
        [1, sh, sw, 1],
      ) as tf.Tensor4D;
    return out;
  });
}

/** PyTorch ConvTranspose2d on NHWC: the full transposed conv, then `pad` cropped and `outputPad` zero-extended. */
function convTransposeGeneral(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  stride: number,
  pad: number,
  outputPad: number,
): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const [kh, kw, cout] = weight.shape as [number, number, number, number];
  const fullH = (h - 1) * stride + kh;
  const fullW = (w - 1) * stride + kw;
  const outH = fullH - 2 * pad + outputPad;
  const outW = fullW - 2 * pad + outputPad;
  if (flopCounter.enabled) flopCounter.flops += 2 * n * h * w * cout * (weight.shape[3] as number) * kh * kw;
  return tf.tidy(() => {
    let full = tf.conv2dTranspose(x, weight as tf.Tensor4D, [n, fullH, fullW, cout], stride, 'valid');
    const extra = pad + outH - fullH;
    if (extra > 0)
      full = tf.pad(full, [
        [0, 0],
        [0, extra],
        [0, extra],
        [0, 0],
      ]);
    const out = full.slice([0, pad, pad, 0], [n, outH, outW, cout]);
    return bias ? out.add(bias) : out;
  });
}

/** Pads for a pool window: the given sides plus what ceil_mode needs at the bottom and right. */
function poolPaddings(x: tf.Tensor4D, kernel: number, stride: number, pad: Pad2d | undefined, ceil: boolean) {
  const [t, b, l, r] = padSides(pad);
  const [, h, w] = x.shape;
  const outH = windowOutput(h, kernel, stride, t, b, 1, ceil);
  const outW = windowOutput(w, kernel, stride, l, r, 1, ceil);
  const bottom = Math.max(b, (outH - 1) * stride + kernel - h - t);
  const right = Math.max(r, (outW - 1) * stride + kernel - w - l);
  return { paddings: imagePaddings([t, bottom, l, right]), outH, outW };
}

/** Means over the bins of one axis as AdaptiveAvgPool2d draws them: [floor(i*n/bins), ceil((i+1)*n/bins)). */
function adaptiveAxis(x: tf.Tensor4D, axis: 1 | 2, bins: number): tf.Tensor4D {
  const size = x.shape[axis];
  if (size === bins) return x;
  const parts: tf.Tensor4D[] = [];
  for (let i = 0; i < bins; i++) {
    const start = Math.floor((i * size) / bins);
    const end = Math.ceil(((i + 1) * size) / bins);
    const begin: [number, number, number, number] = [0, 0, 0, 0];
    const extent: [number, number, number, number] = [-1, -1, -1, -1];
    begin[axis] = start;
    extent[axis] = end - start;
    parts.push(x.slice(begin, extent).mean(axis, true));
  }
  return tf.concat(parts, axis);
}

/** Applies a [dst, src] interpolation matrix along H (axis 1) or W (axis 2) of an NHWC image. */
function interpolateAxis(x: tf.Tensor4D, axis: 1 | 2, matrix: Float32Array, dst: number): tf.Tensor4D {
  const src = x.shape[axis];
  const perm = axis === 1 ? [1, 0, 2, 3] : [2, 0, 1, 3];
  const inverse = axis === 1 ? [1, 0, 2, 3] : [1, 2, 0, 3];
  const moved = x.transpose(perm);
  const rest = moved.shape.slice(1);
  const product = tf.matMul(tf.tensor2d(matrix, [dst, src]), moved.reshape([src, -1]));
  return product.reshape([dst, ...rest]).transpose(inverse) as tf.Tensor4D;
}

/** Edge-replicating pad (tfjs has only constant and mirror padding). */
function edgePad(x: tf.Tensor4D, [t, b, l, r]: [number, number, number, number]): tf.Tensor4D {
  const [, h, w] = x.shape;
  const rows = (at: number, count: number) =>
    tf.tile(x.slice([0, at, 0, 0], [-1, 1, -1, -1]), [1, count, 1, 1]);
  let y = x;
  if (t || b) y = tf.concat([...(t ? [rows(0, t)] : []), y, ...(b ? [rows(h - 1, b)] : [])], 1);
  const cols = (at: number, count: number) =>
    tf.tile(y.slice([0, 0, at, 0], [-1, -1, 1, -1]), [1, 1, count, 1]);
  if (l || r) y = tf.concat([...(l ? [cols(0, l)] : []), y, ...(r ? [cols(w - 1, r)] : [])], 2);
  return y;
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

  conv: (x, weight, bias, options = {}) => convGeneral(x as tf.Tensor4D, weight, bias, options),
  convTranspose: (x, weight, bias, stride, pad = 0, outputPad = 0) =>
    convTransposeGeneral(x as tf.Tensor4D, weight, bias, stride, pad, outputPad),
  maxPool(x, kernel, stride, pad, ceil = false) {
    return tf.tidy(() => {
      const { paddings } = poolPaddings(x as tf.Tensor4D, kernel, stride, pad, ceil);
      const padded = paddings.some(([a, b]) => a || b) ? tf.pad(x, paddings, -Infinity) : x;
      return tf.maxPool(padded as tf.Tensor4D, kernel, stride, 'valid');
    });
  },
  avgPool(x, kernel, stride, pad) {
    return tf.tidy(() => {
      const { paddings } = poolPaddings(x as tf.Tensor4D, kernel, stride, pad, false);
      return tf.avgPool(tf.pad(x, paddings) as tf.Tensor4D, kernel, stride, 'valid');
    });
  },
  adaptiveAvgPool: (x, h, w) => tf.tidy(() => adaptiveAxis(adaptiveAxis(x as tf.Tensor4D, 1, h), 2, w)),
  channelAffine: (x, scale, shift) => tf.tidy(() => x.mul(scale).add(shift)),
  instanceNorm(x, eps, gamma, beta) {
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, [1, 2], true);
      const normed = x.sub(mean).mul(tf.rsqrt(variance.add(eps)));
      return gamma && beta ? normed.mul(gamma).add(beta) : normed;
    });
  },
  padImage(x, pad, mode = 'constant', value = 0) {
    const sides = padSides(pad);
    if (mode === 'edge') return tf.tidy(() => edgePad(x as tf.Tensor4D, sides));
    const paddings = imagePaddings(sides);
    return mode === 'reflect' ? tf.mirrorPad(x, paddings, 'reflect') : tf.pad(x, paddings, value);
  },
  resize(x, h, w, mode, alignCorners = false) {
    return tf.tidy(() => {
      let y = x as tf.Tensor4D;
      const [, srcH, srcW] = y.shape;
      if (srcH !== h) y = interpolateAxis(y, 1, interpolationMatrix(srcH, h, mode, alignCorners), h);
      if (srcW !== w) y = interpolateAxis(y, 2, interpolationMatrix(srcW, w, mode, alignCorners), w);
      return y;
    });
  },
  cropImage: (x, top, left, h, w) => x.slice([0, top, left, 0], [-1, h, w, -1]),

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
  concat: (xs, axis) => tf.concat(xs, axis),
  slice(x, axis, start, size) {
    const begin = x.shape.map(() => 0);
    const extent = x.shape.map(() => -1);
    begin[axis] = start;
    extent[axis] = size;
    return x.slice(begin, extent);
  },
  addScalar: (x, s) => x.add(s),
  div: (a, b) => tf.div(a, b),
  relu: (x) => tf.relu(x),
  clip: (x, lo, hi) => tf.clipByValue(x, lo, hi),
  leakyRelu: (x, alpha) => tf.leakyRelu(x, alpha),
  elu: (x) => tf.elu(x),
  sigmoid: (x) => tf.sigmoid(x),
  tanh: (x) => tf.tanh(x),
  sqrt: (x) => tf.sqrt(x),
  softmax: (x) => tf.softmax(x),
  silu: (x) => tf.tidy(() => x.mul(tf.sigmoid(x))),
  gelu: (x) => tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5)),
  quickGelu: (x) => tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)))),
};
