import * as tf from '@tensorflow/tfjs';
import type { ConvOptions, Ops } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';

/** nn.Conv2d (weight OIHW in the checkpoint, HWIO in the store; bias optional, as mmcv ConvModule drops it). */
export class Conv {
  private readonly weight: string;
  private readonly bias?: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    private readonly options: ConvOptions & { bias?: boolean } = {},
  ) {
    const groups = options.groups ?? 1;
    this.weight = params.declare(`${name}.weight`, [outChannels, inChannels / groups, kernel, kernel]);
    if (options.bias ?? true) this.bias = params.declare(`${name}.bias`, [outChannels]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    const bias = this.bias === undefined ? undefined : this.params.get(this.bias);
    return o.conv(x, this.params.get(this.weight), bias, this.options);
  }
}

/** nn.Linear over the last axis of tokens. */
export class Linear {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inFeatures: number,
    outFeatures: number,
  ) {
    this.weight = params.declare(`${name}.weight`, [outFeatures, inFeatures]);
    this.bias = params.declare(`${name}.bias`, [outFeatures]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.linear(x, this.params.get(this.weight), this.params.get(this.bias));
  }

  /** The output split into `parts` equal pieces of the last axis (Attention's qkv). */
  forwardSplit<T>(o: Ops<T>, x: T, parts: number): T[] {
    return o.linearSplit(x, this.params.get(this.weight), this.params.get(this.bias), parts);
  }
}

/** nn.LayerNorm over the last axis of tokens. */
export class LayerNorm {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    channels: number,
    private readonly eps: number,
  ) {
    this.weight = params.declare(`${name}.weight`, [channels]);
    this.bias = params.declare(`${name}.bias`, [channels]);
  }

  forward<T>(o: Ops<T>, tokens: T): T {
    return o.layerNorm(tokens, this.params.get(this.weight), this.params.get(this.bias), this.eps);
  }

  /** The norm over the channels of an image (UniFormer's `norm(x.permute(0, 2, 3, 1))`). */
  forwardImage<T>(o: Ops<T>, x: T): T {
    const [, h, w] = o.imageShape(x);
    return o.fromTokens(this.forward(o, o.toTokens(x)), h, w);
  }
}

/** nn.BatchNorm2d in eval mode, folded into one per-channel affine when the weights are loaded. */
export class FoldedBatchNorm {
  private scale?: tf.Tensor1D;
  private shift?: tf.Tensor1D;
  constructor(
    private readonly params: ParamStore,
    private readonly name: string,
    channels: number,
    private readonly eps = 1e-5,
  ) {
    for (const key of ['weight', 'bias', 'running_mean', 'running_var'])
      params.declare(`${name}.${key}`, [channels]);
  }

  /** Computes scale = weight / sqrt(var + eps) and shift = bias - mean * scale (in float64) from the loaded stats. */
  prepare(): void {
    this.dispose();
    const read = (key: string) => this.params.get(`${this.name}.${key}`).dataSync() as Float32Array;
    const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map(read) as [
      Float32Array,
      Float32Array,
      Float32Array,
      Float32Array,
    ];
    const scale = new Float32Array(gamma.length);
    const shift = new Float32Array(gamma.length);
    for (let c = 0; c < gamma.length; c++) {
      const s = gamma[c]! / Math.sqrt(variance[c]! + this.eps);
      scale[c] = s;
      shift[c] = beta[c]! - mean[c]! * s;
    }
    this.scale = tf.tensor1d(scale);
    this.shift = tf.tensor1d(shift);
  }

  forward<T>(o: Ops<T>, x: T): T {
    if (!this.scale || !this.shift) throw new Error(`${this.name}: batch norm used before prepare()`);
    return o.channelAffine(x, this.scale, this.shift);
  }

  dispose(): void {
    this.scale?.dispose();
    this.shift?.dispose();
    this.scale = undefined;
    this.shift = undefined;
  }
}

/** mmcv ConvModule with norm_cfg BN and ReLU: conv (no bias) -> BN -> ReLU; keys `<name>.conv` / `<name>.bn`. */
export class ConvBnRelu {
  private readonly conv: Conv;
  readonly bn: FoldedBatchNorm;
  constructor(params: ParamStore, name: string, inChannels: number, outChannels: number, kernel: number) {
    this.conv = new Conv(params, `${name}.conv`, inChannels, outChannels, kernel, {
      pad: (kernel - 1) / 2,
      bias: false,
    });
    this.bn = new FoldedBatchNorm(params, `${name}.bn`, outChannels);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.relu(this.bn.forward(o, this.conv.forward(o, x)));
  }
}
