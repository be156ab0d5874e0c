import type * as tf from '@tensorflow/tfjs';
import { float32ToFloat16Bits } from '../../weights/safetensors.ts';
import { interpolationMatrix } from '../interpolation.ts';
import { type ConvOptions, type Ops, type Pad2d, padSides, type ResizeMode, windowOutput } from '../ops.ts';
import { flopCounter } from '../tf-ops.ts';

/** ONNX TensorProto data types used here. */
export const DTYPE = { float: 1, int32: 6, int64: 7, float16: 10 } as const;

/** A symbolic tensor: a value name in the graph and its static shape (images are stored NCHW). */
export interface Sym {
  readonly name: string;
  readonly shape: number[];
}

/** One recorded node. */
export interface GraphNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, number | number[] | string>;
  domain?: string;
}

/** An initializer: its data is read from the weight only when the graph is serialised. */
export interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Raw little-endian bytes. */
  bytes: () => Uint8Array;
}

/** A graph input or output as ONNX declares it. */
export interface GraphValue {
  name: string;
  shape: number[];
  dataType: number;
}

/** Precision of a built graph: fp32, fp16 compute, or fp16-stored weights cast to fp32 (CPU-runnable). */
export type GraphPrecision = 'fp32' | 'fp16' | 'fp16-weights';

/** Options of {@link OnnxBuilder}. */
export interface BuilderOptions {
  precision: GraphPrecision;
  /**
   * Run multi-head attention as one com.microsoft MultiHeadAttention node (CPU: fp32 only; CUDA: fp16 too)
   * instead of MatMul/Softmax/MatMul with head transposes. Default true.
   */
  fusedAttention?: boolean;
}

function broadcast(a: number[], b: number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

function floatBytes(data: Float32Array, half: boolean): Uint8Array {
  if (!half) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = float32ToFloat16Bits(data[i]!);
  return new Uint8Array(out.buffer);
}

/** HWIO -> OIHW, the layout ONNX Conv wants. */
function hwioToOihw(data: Float32Array, [h, w, i, o]: number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let y = 0; y < h!; y++)
    for (let x = 0; x < w!; x++)
      for (let ic = 0; ic < i!; ic++)
        for (let oc = 0; oc < o!; oc++)
          out[((oc * i! + ic) * h! + y) * w! + x] = data[((y * w! + x) * i! + ic) * o! + oc]!;
  return out;
}

/**
 * The ONNX backend of {@link Ops}: running a model's `build` method with it records the model as an ONNX
 * graph (images NCHW inside, NHWC at the graph's inputs and outputs), with the loaded weights as initializers.
 * Shapes are static: a graph is built per input shape.
 */
export class OnnxBuilder implements Ops<Sym> {
  readonly name = 'onnx';
  readonly nodes: GraphNode[] = [];
  readonly initializers: Initializer[] = [];
  readonly inputs: GraphValue[] = [];
  readonly outputs: GraphValue[] = [];
  private readonly weights = new Map<tf.Tensor, Map<string, string>>();
  private counter = 0;
  /** Element type of activations inside the graph. */
  private readonly compute: number;

  constructor(readonly options: BuilderOptions) {
    this.compute = options.precision === 'fp16' ? DTYPE.float16 : DTYPE.float;
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Adds a node and returns its (first) output. */
  node(
    opType: string,
    inputs: string[],
    shape: number[],
    attributes: GraphNode['attributes'] = {},
    domain?: string,
  ): Sym {
    const name = this.fresh(opType);
    this.nodes.push({ opType, inputs, outputs: [name], attributes, domain });
    return { name, shape };
  }

  /** A float initializer in the graph's weight precision (fp16 weights are cast to fp32 where fp32 computes). */
  private floatInit(name: string, dims: number[], data: () => Float32Array): string {
    const half = this.options.precision !== 'fp32';
    this.initializers.push({
      name,
      dims,
      dataType: half ? DTYPE.float16 : DTYPE.float,
      bytes: () => floatBytes(data(), half),
    });
    if (this.options.precision !== 'fp16-weights') return name;
    const cast = `${name}_f32`;
    this.nodes.push({ opType: 'Cast', inputs: [name], outputs: [cast], attributes: { to: DTYPE.float } });
    return cast;
  }

  /** A weight as an initializer, converted once per (tensor, layout). */
  private weight(
    tensor: tf.Tensor,
    kind: 'raw' | 'oihw' | 'c11' | `cols${number}/${number}` = 'raw',
  ): string {
    const byKind = this.weights.get(tensor) ?? new Map<string, string>();
    this.weights.set(tensor, byKind);
    const known = byKind.get(kind);
    if (known) return known;
    const shape = tensor.shape as number[];
    let dims = shape;
    let data = () => tensor.dataSync() as Float32Array;
    if (kind === 'oihw') {
      dims = [shape[3]!, shape[2]!, shape[0]!, shape[1]!];
      data = () => hwioToOihw(tensor.dataSync() as Float32Array, shape);
    } else if (kind === 'c11') {
      dims = [shape[0]!, 1, 1];
    } else if (kind.startsWith('cols')) {
      // Part k of n of the last axis ([in, out] weights, or a bias [out]).
      const [k, n] = kind.slice(4).split('/').map(Number) as [number, number];
      const out = shape[shape.length - 1]!;
      const rows = shape.length === 2 ? shape[0]! : 1;
      const width = out / n;
      dims = shape.length === 2 ? [rows, width] : [width];
      data = () => {
        const all = tensor.dataSync() as Float32Array;
        const part = new Float32Array(rows * width);
        for (let r = 0; r < rows; r++)
          part.set(all.subarray(r * out + k * width, r * out + (k + 1) * width), r * width);
        return part;
      };
    }
    const name = this.floatInit(this.fresh('w'), dims, data);
    byKind.set(kind, name);
    return name;
  }

  /** A float constant in the compute precision. */
  floatConst(values: Float32Array | number[], dims: number[]): Sym {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const name = this.fresh('c');
    const half = this.compute === DTYPE.float16;
    this.initializers.push({
      name,
      dims,
      dataType: this.compute,
      bytes: () => floatBytes(data, half),
    });
    return { name, shape: dims };
  }

  /** An int64 constant (shapes, axes, pads). */
  int64Const(values: number[]): string {
    const name = this.fresh('i');
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push({
      name,
      dims: [values.length],
      dataType: DTYPE.int64,
      bytes: () => new Uint8Array(data.buffer),
    });
    return name;
  }

  /** Declares a graph input; an `image` input is NHWC outside and NCHW inside. */
  input(name: string, shape: number[], kind: 'image' | 'tensor' | 'int32' = 'tensor'): Sym {
    const dataType = kind === 'int32' ? DTYPE.int32 : DTYPE.float;
    this.inputs.push({ name, shape, dataType });
    let sym: Sym = { name, shape };
    if (kind !== 'int32' && this.compute !== DTYPE.float) {
      sym = this.node('Cast', [name], shape, { to: this.compute });
    }
    if (kind === 'image') {
      const [n, h, w, c] = shape as [number, number, number, number];
      sym = this.node('Transpose', [sym.name], [n, c, h, w], { perm: [0, 3, 1, 2] });
    }
    return sym;
  }

  /** Declares a graph output (float32; images back to NHWC). */
  output(name: string, sym: Sym, kind: 'image' | 'tensor' = 'tensor'): void {
    let value = sym;
    if (kind === 'image') {
      const [n, c, h, w] = sym.shape as [number, number, number, number];
      value = this.node('Transpose', [value.name], [n, h, w, c], { perm: [0, 2, 3, 1] });
    }
    if (this.compute !== DTYPE.float)
      value = this.node('Cast', [value.name], value.shape, { to: DTYPE.float });
    this.nodes.push({ opType: 'Identity', inputs: [value.name], outputs: [name], attributes: {} });
    this.outputs.push({ name, shape: value.shape, dataType: DTYPE.float });
  }

  /** The first `count` entries of the batch axis. */
  sliceBatch(x: Sym, count: number): Sym {
    if (x.shape[0] === count) return x;
    return this.node(
      'Slice',
      [x.name, this.int64Const([0]), this.int64Const([count]), this.int64Const([0])],
      [count, ...x.shape.slice(1)],
    );
  }

  /** Concatenation along the batch axis. */
  concatBatch(xs: Sym[]): Sym {
    if (xs.length === 1) return xs[0]!;
    const n = xs.reduce((a, x) => a + x.shape[0]!, 0);
    return this.node(
      'Concat',
      xs.map((x) => x.name),
      [n, ...xs[0]!.shape.slice(1)],
      { axis: 0 },
    );
  }

  /** Zeros of a shape (made at run time, so they cost no initializer bytes). */
  zeros(shape: number[]): Sym {
    const node = this.node('ConstantOfShape', [this.int64Const(shape)], shape);
    // ConstantOfShape defaults to float32 zeros; fp16 graphs cast.
    return this.compute === DTYPE.float ? node : this.node('Cast', [node.name], shape, { to: this.compute });
  }

  /** Element `index` of a 1-D input as a [1] tensor (a per-residual scale). */
  element(x: Sym, index: number): Sym {
    return this.node(
      'Slice',
      [x.name, this.int64Const([index]), this.int64Const([index + 1]), this.int64Const([0])],
      [1],
    );
  }

  // ---- Ops ----

  scope<R>(fn: () => R): R {
    return fn();
  }

  conv2d(x: Sym, weight: tf.Tensor, bias: tf.Tensor, stride: number, pad: number): Sym {
    const [n, cin, h, w] = x.shape as [number, number, number, number];
    const [kh, kw, , cout] = weight.shape as [number, number, number, number];
    const outH = Math.floor((h + 2 * pad - kh) / stride) + 1;
    const outW = Math.floor((w + 2 * pad - kw) / stride) + 1;
    if (flopCounter.enabled) flopCounter.flops += 2 * n * outH * outW * cout * cin * kh * kw;
    return this.node(
      'Conv',
      [x.name, this.weight(weight, 'oihw'), this.weight(bias)],
      [n, cout, outH, outW],
      {
        kernel_shape: [kh, kw],
        pads: [pad, pad, pad, pad],
        strides: [stride, stride],
      },
    );
  }

  groupNorm(x: Sym, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    // InstanceNormalization over [N, groups, rest] is GroupNorm without the affine part (one kernel on CPU).
    const grouped = this.node(
      'Reshape',
      [x.name, this.int64Const([n, groups, -1])],
      [n, groups, (c / groups) * h * w],
    );
    const ones = this.floatConst(new Float32Array(groups).fill(1), [groups]);
    const zeros = this.floatConst(new Float32Array(groups), [groups]);
    const normed = this.node('InstanceNormalization', [grouped.name, ones.name, zeros.name], grouped.shape, {
      epsilon: eps,
    });
    const back = this.node('Reshape', [normed.name, this.int64Const([n, c, h, w])], [n, c, h, w]);
    const scaled = this.node('Mul', [back.name, this.weight(gamma, 'c11')], back.shape);
    return this.node('Add', [scaled.name, this.weight(beta, 'c11')], back.shape);
  }

  imageShape(x: Sym): [number, number, number, number] {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    return [n, h, w, c];
  }

  toTokens(x: Sym): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const flat = this.node('Reshape', [x.name, this.int64Const([n, c, h * w])], [n, c, h * w]);
    return this.node('Transpose', [flat.name], [n, h * w, c], { perm: [0, 2, 1] });
  }

  fromTokens(x: Sym, h: number, w: number): Sym {
    const [n, , c] = x.shape as [number, number, number];
    const t = this.node('Transpose', [x.name], [n, c, h * w], { perm: [0, 2, 1] });
    return this.node('Reshape', [t.name, this.int64Const([n, c, h, w])], [n, c, h, w]);
  }

  addPerChannel(x: Sym, v: Sym): Sym {
    const [n, c] = v.shape as [number, number];
    const v4 = this.node('Reshape', [v.name, this.int64Const([n, c, 1, 1])], [n, c, 1, 1]);
    return this.add(x, v4);
  }

  concatChannels(xs: Sym[]): Sym {
    const [n, , h, w] = xs[0]!.shape as [number, number, number, number];
    const c = xs.reduce((a, x) => a + x.shape[1]!, 0);
    return this.node(
      'Concat',
      xs.map((x) => x.name),
      [n, c, h, w],
      { axis: 1 },
    );
  }

  sliceChannels(x: Sym, start: number, size: number): Sym {
    const [n, , h, w] = x.shape as [number, number, number, number];
    return this.node(
      'Slice',
      [x.name, this.int64Const([start]), this.int64Const([start + size]), this.int64Const([1])],
      [n, size, h, w],
    );
  }

  upsampleNearest2x(x: Sym): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const scales = this.fresh('scales');
    const values = new Float32Array([1, 1, 2, 2]);
    this.initializers.push({
      name: scales,
      dims: [4],
      dataType: DTYPE.float,
      bytes: () => new Uint8Array(values.buffer),
    });
    return this.node('Resize', [x.name, '', scales], [n, c, 2 * h, 2 * w], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }

  padBottomRight(x: Sym, amount: number): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    return this.node(
      'Pad',
      [x.name, this.int64Const([0, 0, 0, 0, 0, 0, amount, amount])],
      [n, c, h + amount, w + amount],
    );
  }

  conv(x: Sym, weight: tf.Tensor, bias: tf.Tensor | undefined, o: ConvOptions = {}): Sym {
    const [n, , h, w] = x.shape as [number, number, number, number];
    const [kh, kw, inPerGroup, cout] = weight.shape as [number, number, number, number];
    const [sh, sw] = typeof o.stride === 'number' ? [o.stride, o.stride] : (o.stride ?? [1, 1]);
    const dilation = o.dilation ?? 1;
    const [t, b, l, r] = padSides(o.pad);
    const outH = windowOutput(h, kh, sh, t, b, dilation);
    const outW = windowOutput(w, kw, sw, l, r, dilation);
    if (flopCounter.enabled) flopCounter.flops += 2 * n * outH * outW * cout * inPerGroup * kh * kw;
    const inputs = [x.name, this.weight(weight, 'oihw')];
    if (bias) inputs.push(this.weight(bias));
    return this.node('Conv', inputs, [n, cout, outH, outW], {
      kernel_shape: [kh, kw],
      pads: [t, l, b, r],
      strides: [sh, sw],
      dilations: [dilation, dilation],
      group: o.groups ?? 1,
    });
  }

  convTranspose(
    x: Sym,
    weight: tf.Tensor,
    bias: tf.Tensor | undefined,
    stride: number,
    pad = 0,
    outputPad = 0,
  ): Sym {
    const [n, , h, w] = x.shape as [number, number, number, number];
    // HWIO-held [kh, kw, out, in] -> OIHW [in, out, kh, kw], which is ConvTranspose's (C_in, C_out, kH, kW).
    const [kh, kw, cout, cin] = weight.shape as [number, number, number, number];
    if (flopCounter.enabled) flopCounter.flops += 2 * n * h * w * cout * cin * kh * kw;
    const inputs = [x.name, this.weight(weight, 'oihw')];
    if (bias) inputs.push(this.weight(bias));
    const outH = (h - 1) * stride - 2 * pad + kh + outputPad;
    const outW = (w - 1) * stride - 2 * pad + kw + outputPad;
    return this.node('ConvTranspose', inputs, [n, cout, outH, outW], {
      kernel_shape: [kh, kw],
      pads: [pad, pad, pad, pad],
      strides: [stride, stride],
      output_padding: [outputPad, outputPad],
    });
  }

  private pool(
    op: 'MaxPool' | 'AveragePool',
    x: Sym,
    kernel: number,
    stride: number,
    pad: Pad2d | undefined,
    ceil: boolean,
  ): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const [t, b, l, r] = padSides(pad);
    const outH = windowOutput(h, kernel, stride, t, b, 1, ceil);
    const outW = windowOutput(w, kernel, stride, l, r, 1, ceil);
    return this.node(op, [x.name], [n, c, outH, outW], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [t, l, b, r],
      ceil_mode: ceil ? 1 : 0,
      ...(op === 'AveragePool' ? { count_include_pad: 1 } : {}),
    });
  }

  maxPool(x: Sym, kernel: number, stride: number, pad?: Pad2d, ceil = false): Sym {
    return this.pool('MaxPool', x, kernel, stride, pad, ceil);
  }

  avgPool(x: Sym, kernel: number, stride: number, pad?: Pad2d): Sym {
    return this.pool('AveragePool', x, kernel, stride, pad, false);
  }

  adaptiveAvgPool(x: Sym, h: number, w: number): Sym {
    const axis = (value: Sym, dim: 2 | 3, bins: number): Sym => {
      const size = value.shape[dim]!;
      if (size === bins) return value;
      const parts: Sym[] = [];
      for (let i = 0; i < bins; i++) {
        const start = Math.floor((i * size) / bins);
        const end = Math.ceil(((i + 1) * size) / bins);
        const shape = [...value.shape];
        shape[dim] = end - start;
        const slice = this.node(
          'Slice',
          [value.name, this.int64Const([start]), this.int64Const([end]), this.int64Const([dim])],
          shape,
        );
        shape[dim] = 1;
        parts.push(this.node('ReduceMean', [slice.name], [...shape], { axes: [dim], keepdims: 1 }));
      }
      const shape = [...value.shape];
      shape[dim] = bins;
      return this.node(
        'Concat',
        parts.map((p) => p.name),
        shape,
        { axis: dim },
      );
    };
    return axis(axis(x, 2, h), 3, w);
  }

  channelAffine(x: Sym, scale: tf.Tensor, shift: tf.Tensor): Sym {
    const scaled = this.node('Mul', [x.name, this.weight(scale, 'c11')], x.shape);
    return this.node('Add', [scaled.name, this.weight(shift, 'c11')], x.shape);
  }

  instanceNorm(x: Sym, eps: number, gamma?: tf.Tensor, beta?: tf.Tensor): Sym {
    const c = x.shape[1]!;
    const scale = gamma ? this.weight(gamma) : this.floatConst(new Float32Array(c).fill(1), [c]).name;
    const shift = beta ? this.weight(beta) : this.floatConst(new Float32Array(c), [c]).name;
    return this.node('InstanceNormalization', [x.name, scale, shift], x.shape, { epsilon: eps });
  }

  padImage(x: Sym, pad: Pad2d, mode: 'constant' | 'reflect' | 'edge' = 'constant', value = 0): Sym {
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const [t, b, l, r] = padSides(pad);
    const inputs = [x.name, this.int64Const([0, 0, t, l, 0, 0, b, r])];
    if (mode === 'constant' && value !== 0) inputs.push(this.floatConst([value], []).name);
    return this.node('Pad', inputs, [n, c, h + t + b, w + l + r], { mode });
  }

  resize(x: Sym, h: number, w: number, mode: ResizeMode, alignCorners = false): Sym {
    // MatMuls with PyTorch's interpolation matrices (see interpolationMatrix): the same numbers tfjs uses.
    let y = x;
    const [n, c, srcH, srcW] = x.shape as [number, number, number, number];
    if (srcW !== w) {
      const m = interpolationMatrix(srcW, w, mode, alignCorners);
      const mT = new Float32Array(srcW * w);
      for (let d = 0; d < w; d++) for (let s2 = 0; s2 < srcW; s2++) mT[s2 * w + d] = m[d * srcW + s2]!;
      y = this.node('MatMul', [y.name, this.floatConst(mT, [srcW, w]).name], [n, c, srcH, w]);
    }
    if (srcH !== h) {
      const m = interpolationMatrix(srcH, h, mode, alignCorners);
      y = this.node('MatMul', [this.floatConst(m, [h, srcH]).name, y.name], [n, c, h, w]);
    }
    return y;
  }

  cropImage(x: Sym, top: number, left: number, h: number, w: number): Sym {
    const [n, c] = x.shape as [number, number];
    return this.node(
      'Slice',
      [x.name, this.int64Const([top, left]), this.int64Const([top + h, left + w]), this.int64Const([2, 3])],
      [n, c, h, w],
    );
  }

  shape(x: Sym): number[] {
    return x.shape;
  }

  linear(x: Sym, weight: tf.Tensor, bias?: tf.Tensor): Sym {
    const [inputs, outputs] = weight.shape as [number, number];
    if (flopCounter.enabled) flopCounter.flops += (2 * x.shape.reduce((a, b) => a * b, 1) * outputs) / inputs;
    const shape = [...x.shape.slice(0, -1), outputs];
    const product = this.node('MatMul', [x.name, this.weight(weight)], shape);
    return bias ? this.node('Add', [product.name, this.weight(bias)], shape) : product;
  }

  // One MatMul per part on column slices of the weight: no Split copy of the full projection.
  linearSplit(x: Sym, weight: tf.Tensor, bias: tf.Tensor | undefined, parts: number): Sym[] {
    const [inputs, outputs] = weight.shape as [number, number];
    const width = outputs / parts;
    if (flopCounter.enabled) flopCounter.flops += (2 * x.shape.reduce((a, b) => a * b, 1) * outputs) / inputs;
    const shape = [...x.shape.slice(0, -1), width];
    return Array.from({ length: parts }, (_, k) => {
      const kind = `cols${k}/${parts}` as const;
      const product = this.node('MatMul', [x.name, this.weight(weight, kind)], shape);
      return bias ? this.node('Add', [product.name, this.weight(bias, kind)], shape) : product;
    });
  }

  layerNorm(x: Sym, gamma: tf.Tensor, beta: tf.Tensor, eps: number): Sym {
    return this.node('LayerNormalization', [x.name, this.weight(gamma), this.weight(beta)], x.shape, {
      axis: -1,
      epsilon: eps,
    });
  }

  attention(q: Sym, k: Sym, v: Sym, scale: number, mask?: tf.Tensor): Sym {
    const [batch, queries, dim] = q.shape as [number, number, number];
    const keys = k.shape[1]!;
    if (flopCounter.enabled) flopCounter.flops += 2 * 2 * batch * queries * keys * dim;
    const scaled = this.mulScalar(q, scale);
    const kT = this.node('Transpose', [k.name], [batch, dim, keys], { perm: [0, 2, 1] });
    let scores = this.node('MatMul', [scaled.name, kT.name], [batch, queries, keys]);
    if (mask) {
      const values = Float32Array.from(mask.dataSync() as Float32Array, (m) =>
        this.compute === DTYPE.float16 ? Math.max(m, -65504) : m,
      );
      scores = this.add(scores, this.floatConst(values, mask.shape as number[]));
    }
    const probs = this.node('Softmax', [scores.name], scores.shape, { axis: -1 });
    return this.node('MatMul', [probs.name, v.name], [batch, queries, v.shape[2]!]);
  }

  multiHeadAttention(q: Sym, k: Sym, v: Sym, heads: number, scale: number): Sym {
    const [b, n, inner] = q.shape as [number, number, number];
    const dim = inner / heads;
    if (this.options.fusedAttention ?? true) {
      if (flopCounter.enabled) flopCounter.flops += 2 * 2 * b * heads * n * k.shape[1]! * dim;
      return this.node(
        'MultiHeadAttention',
        [q.name, k.name, v.name],
        [b, n, inner],
        { num_heads: heads, scale },
        'com.microsoft',
      );
    }
    const split = (x: Sym) => {
      const tokens = x.shape[1]!;
      return this.reshape(this.transpose(this.reshape(x, [b, tokens, heads, dim]), [0, 2, 1, 3]), [
        b * heads,
        tokens,
        dim,
      ]);
    };
    const attended = this.attention(split(q), split(k), split(v), scale);
    return this.reshape(this.transpose(this.reshape(attended, [b, heads, n, dim]), [0, 2, 1, 3]), [
      b,
      n,
      inner,
    ]);
  }

  reshape(x: Sym, shape: number[]): Sym {
    return this.node('Reshape', [x.name, this.int64Const(shape)], shape);
  }

  transpose(x: Sym, perm: number[]): Sym {
    return this.node(
      'Transpose',
      [x.name],
      perm.map((p) => x.shape[p]!),
      { perm },
    );
  }

  splitLast(x: Sym, parts: number): Sym[] {
    const last = x.shape[x.shape.length - 1]! / parts;
    const shape = [...x.shape.slice(0, -1), last];
    const outputs = Array.from({ length: parts }, () => this.fresh('Split'));
    this.nodes.push({
      opType: 'Split',
      inputs: [x.name, this.int64Const(Array(parts).fill(last))],
      outputs,
      attributes: { axis: -1 },
    });
    return outputs.map((name) => ({ name, shape }));
  }

  embedding(table: tf.Tensor, ids: Sym): Sym {
    return this.node('Gather', [this.weight(table), ids.name], [...ids.shape, table.shape[1]!], { axis: 0 });
  }

  constant(value: tf.Tensor): Sym {
    // Copied now: the tensor may be an intermediate freed before the graph is serialised.
    const data = Float32Array.from(value.dataSync() as Float32Array);
    const name = this.floatInit(this.fresh('k'), value.shape as number[], () => data);
    return { name, shape: value.shape as number[] };
  }

  add(a: Sym, b: Sym): Sym {
    return this.node('Add', [a.name, b.name], broadcast(a.shape, b.shape));
  }

  sub(a: Sym, b: Sym): Sym {
    return this.node('Sub', [a.name, b.name], broadcast(a.shape, b.shape));
  }

  mul(a: Sym, b: Sym): Sym {
    return this.node('Mul', [a.name, b.name], broadcast(a.shape, b.shape));
  }

  mulScalar(x: Sym, s: number): Sym {
    return this.node('Mul', [x.name, this.floatConst([s], []).name], x.shape);
  }

  concat(xs: Sym[], axis: number): Sym {
    const rank = xs[0]!.shape.length;
    const a = axis < 0 ? axis + rank : axis;
    const shape = [...xs[0]!.shape];
    shape[a] = xs.reduce((sum, x) => sum + x.shape[a]!, 0);
    return this.node(
      'Concat',
      xs.map((x) => x.name),
      shape,
      { axis: a },
    );
  }

  slice(x: Sym, axis: number, start: number, size: number): Sym {
    const a = axis < 0 ? axis + x.shape.length : axis;
    const shape = [...x.shape];
    shape[a] = size;
    return this.node(
      'Slice',
      [x.name, this.int64Const([start]), this.int64Const([start + size]), this.int64Const([a])],
      shape,
    );
  }

  addScalar(x: Sym, s: number): Sym {
    return this.node('Add', [x.name, this.floatConst([s], []).name], x.shape);
  }

  div(a: Sym, b: Sym): Sym {
    return this.node('Div', [a.name, b.name], broadcast(a.shape, b.shape));
  }

  relu(x: Sym): Sym {
    return this.node('Relu', [x.name], x.shape);
  }

  clip(x: Sym, lo: number, hi: number): Sym {
    return this.node(
      'Clip',
      [x.name, this.floatConst([lo], []).name, this.floatConst([hi], []).name],
      x.shape,
    );
  }

  leakyRelu(x: Sym, alpha: number): Sym {
    return this.node('LeakyRelu', [x.name], x.shape, { alpha });
  }

  elu(x: Sym): Sym {
    return this.node('Elu', [x.name], x.shape, { alpha: 1 });
  }

  sigmoid(x: Sym): Sym {
    return this.node('Sigmoid', [x.name], x.shape);
  }

  tanh(x: Sym): Sym {
    return this.node('Tanh', [x.name], x.shape);
  }

  sqrt(x: Sym): Sym {
    return this.node('Sqrt', [x.name], x.shape);
  }

  softmax(x: Sym): Sym {
    return this.node('Softmax', [x.name], x.shape, { axis: -1 });
  }

  silu(x: Sym): Sym {
    const sig = this.node('Sigmoid', [x.name], x.shape);
    return this.node('Mul', [x.name, sig.name], x.shape);
  }

  // Div, Erf, Add, Mul, Mul: the pattern ORT's optimizer fuses into one Gelu kernel.
  gelu(x: Sym): Sym {
    const div = this.node('Div', [x.name, this.floatConst([Math.SQRT2], []).name], x.shape);
    const erf = this.node('Erf', [div.name], x.shape);
    const plus = this.node('Add', [erf.name, this.floatConst([1], []).name], x.shape);
    const times = this.node('Mul', [x.name, plus.name], x.shape);
    return this.node('Mul', [times.name, this.floatConst([0.5], []).name], x.shape);
  }

  quickGelu(x: Sym): Sym {
    const sig = this.node('Sigmoid', [this.mulScalar(x, 1.702).name], x.shape);
    return this.node('Mul', [x.name, sig.name], x.shape);
  }
}
