import * as tf from '@tensorflow/tfjs';
import type { Ops, Pad2d } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';

/**
 * TensorFlow 'SAME' padding [top, bottom, left, right] of a k x k, stride s window over h x w: geffnet's
 * `_calc_same_pad` (the odd pixel goes after), computed from the static input size.
 */
export function samePad(
  h: number,
  w: number,
  kernel: number,
  stride: number,
): [number, number, number, number] {
  const total = (size: number) => Math.max((Math.ceil(size / stride) - 1) * stride + kernel - size, 0);
  const ph = total(h);
  const pw = total(w);
  return [Math.floor(ph / 2), ph - Math.floor(ph / 2), Math.floor(pw / 2), pw - Math.floor(pw / 2)];
}

/** Conv2d `name.weight` [out, in / groups, k, k] (+ `name.bias`), padded PyTorch-style or TF 'same'. */
export class Conv {
  private readonly weight: string;
  private readonly bias: string | undefined;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inChannels: number,
    outChannels: number,
    private readonly kernel: number,
    private readonly options: {
      stride?: number;
      groups?: number;
      bias?: boolean;
      pad?: number | 'same';
    } = {},
  ) {
    const groups = options.groups ?? 1;
    this.weight = params.declare(`${name}.weight`, [outChannels, inChannels / groups, kernel, kernel]);
    this.bias = options.bias === false ? undefined : params.declare(`${name}.bias`, [outChannels]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    const stride = this.options.stride ?? 1;
    const [, h, w] = o.imageShape(x);
    const pad: Pad2d =
      this.options.pad === 'same' ? samePad(h, w, this.kernel, stride) : (this.options.pad ?? 0);
    return o.conv(
      x,
      this.params.get(this.weight),
      this.bias === undefined ? undefined : this.params.get(this.bias),
      {
        stride,
        pad,
        groups: this.options.groups ?? 1,
      },
    );
  }
}

/**
 * Conv1d with kernel 1 (`name.weight` [out, in, 1], `name.bias`) applied to every pixel, as the decoder's
 * test-mode MLP heads run over `feat_map.view(B, C, H*W)`: a 1x1 conv whose kernel is made once at load time.
 */
export class PointwiseConv1d {
  private readonly weight: string;
  private readonly bias: string;
  private kernel: tf.Tensor | undefined;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inChannels: number,
    private readonly outChannels: number,
  ) {
    this.weight = params.declare(`${name}.weight`, [outChannels, inChannels, 1]);
    this.bias = params.declare(`${name}.bias`, [outChannels]);
  }

  /** Builds the HWIO [1, 1, in, out] kernel from the loaded [out, in, 1] weight. */
  prepare(): void {
    this.kernel?.dispose();
    const w = this.params.get(this.weight);
    this.kernel = tf.tidy(() => w.reshape([this.outChannels, -1]).transpose().expandDims(0).expandDims(0));
  }

  forward<T>(o: Ops<T>, x: T): T {
    if (!this.kernel) throw new Error('PointwiseConv1d used before prepare()');
    return o.conv(x, this.kernel, this.params.get(this.bias));
  }

  dispose(): void {
    this.kernel?.dispose();
    this.kernel = undefined;
  }
}

/** BatchNorm2d in eval mode (`name.weight/bias/running_mean/running_var`), folded at load time into x * scale + shift. */
export class FoldedBatchNorm {
  private readonly names: { weight: string; bias: string; mean: string; variance: string };
  private scale: tf.Tensor | undefined;
  private shift: tf.Tensor | undefined;
  constructor(
    private readonly params: ParamStore,
    name: string,
    channels: number,
    private readonly eps: number,
  ) {
    this.names = {
      weight: params.declare(`${name}.weight`, [channels]),
      bias: params.declare(`${name}.bias`, [channels]),
      mean: params.declare(`${name}.running_mean`, [channels]),
      variance: params.declare(`${name}.running_var`, [channels]),
    };
  }

  /** Computes scale = weight / sqrt(var + eps) and shift = bias - mean * scale (float64, rounded once). */
  prepare(): void {
    this.dispose();
    const read = (name: string) => this.params.get(name).dataSync() as Float32Array;
    const weight = read(this.names.weight);
    const bias = read(this.names.bias);
    const mean = read(this.names.mean);
    const variance = read(this.names.variance);
    const scale = new Float32Array(weight.length);
    const shift = new Float32Array(weight.length);
    for (let c = 0; c < weight.length; c++) {
      const s = weight[c]! / Math.sqrt(variance[c]! + this.eps);
      scale[c] = s;
      shift[c] = bias[c]! - mean[c]! * s;
    }
    this.scale = tf.tensor1d(scale);
    this.shift = tf.tensor1d(shift);
  }

  forward<T>(o: Ops<T>, x: T): T {
    if (!this.scale || !this.shift) throw new Error('FoldedBatchNorm used before prepare()');
    return o.channelAffine(x, this.scale, this.shift);
  }

  dispose(): void {
    this.scale?.dispose();
    this.shift?.dispose();
    this.scale = undefined;
    this.shift = undefined;
  }
}
