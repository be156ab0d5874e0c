import type { Ops } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';
import { Conv, FoldedBatchNorm } from './layers.ts';

/** BatchNorm eps geffnet sets for its `tf_` (TensorFlow-ported) models: BN_EPS_TF_DEFAULT. */
const BN_EPS_TF = 1e-3;

/** One stage of blocks: depthwise-separable (`ds`) or inverted residual (`ir`) with squeeze-excite ratio 0.25. */
interface Stage {
  type: 'ds' | 'ir';
  repeats: number;
  kernel: number;
  stride: number;
  expansion: number;
  out: number;
}

/**
 * geffnet's `tf_efficientnet_b5_ap` (channel multiplier 1.6, depth multiplier 2.2, 'same' padding), its arch_def
 * already scaled: stem 48, head 2048.
 */
const B5_STAGES: readonly Stage[] = [
  { type: 'ds', repeats: 3, kernel: 3, stride: 1, expansion: 1, out: 24 },
  { type: 'ir', repeats: 5, kernel: 3, stride: 2, expansion: 6, out: 40 },
  { type: 'ir', repeats: 5, kernel: 5, stride: 2, expansion: 6, out: 64 },
  { type: 'ir', repeats: 7, kernel: 3, stride: 2, expansion: 6, out: 128 },
  { type: 'ir', repeats: 7, kernel: 5, stride: 1, expansion: 6, out: 176 },
  { type: 'ir', repeats: 9, kernel: 5, stride: 2, expansion: 6, out: 304 },
  { type: 'ir', repeats: 3, kernel: 3, stride: 1, expansion: 6, out: 512 },
];
const STEM = 48;
const HEAD = 2048;

/** Something with BatchNorms to fold once the weights are loaded. */
interface Preparable {
  prepare(): void;
  dispose(): void;
}

/** geffnet SqueezeExcite: gate = sigmoid(expand(silu(reduce(mean over H, W)))), x * gate. */
class SqueezeExcite {
  private readonly reduce: Conv;
  private readonly expand: Conv;
  constructor(params: ParamStore, name: string, channels: number, reduced: number) {
    this.reduce = new Conv(params, `${name}.conv_reduce`, channels, reduced, 1);
    this.expand = new Conv(params, `${name}.conv_expand`, reduced, channels, 1);
  }

  forward<T>(o: Ops<T>, x: T): T {
    const pooled = o.adaptiveAvgPool(x, 1, 1);
    // A [N, 1, 1, C] image times the [N, H, W, C] image broadcasts per channel in either engine's layout.
    return o.mul(x, o.sigmoid(this.expand.forward(o, o.silu(this.reduce.forward(o, pooled)))));
  }
}

/** A `DepthwiseSeparableConv` or `InvertedResidual` block of geffnet (eval: drop-connect is a no-op). */
class Block implements Preparable {
  private readonly expandConv: Conv | undefined;
  private readonly norms: FoldedBatchNorm[] = [];
  private readonly depthwise: Conv;
  private readonly se: SqueezeExcite;
  private readonly project: Conv;
  private readonly residual: boolean;
  constructor(params: ParamStore, name: string, inChannels: number, stage: Stage, stride: number) {
    const mid = inChannels * stage.expansion;
    const bn = (suffix: string, channels: number) => {
      const norm = new FoldedBatchNorm(params, `${name}.${suffix}`, channels, BN_EPS_TF);
      this.norms.push(norm);
      return norm;
    };
    if (stage.type === 'ir') {
      this.expandConv = new Conv(params, `${name}.conv_pw`, inChannels, mid, 1, { bias: false });
      bn('bn1', mid);
    }
    this.depthwise = new Conv(params, `${name}.conv_dw`, mid, mid, stage.kernel, {
      stride,
      groups: mid,
      bias: false,
      pad: 'same',
    });
    bn(stage.type === 'ir' ? 'bn2' : 'bn1', mid);
    // The SE width comes from the block's input channels (geffnet's reduced_base_chs), not the expanded ones.
    this.se = new SqueezeExcite(params, `${name}.se`, mid, Math.round(inChannels * 0.25));
    this.project = new Conv(
      params,
      `${name}.${stage.type === 'ir' ? 'conv_pwl' : 'conv_pw'}`,
      mid,
      stage.out,
      1,
      {
        bias: false,
      },
    );
    bn(stage.type === 'ir' ? 'bn3' : 'bn2', stage.out);
    this.residual = stride === 1 && inChannels === stage.out;
  }

  forward<T>(o: Ops<T>, input: T): T {
    let k = 0;
    let x = input;
    if (this.expandConv) x = o.silu(this.norms[k++]!.forward(o, this.expandConv.forward(o, x)));
    x = o.silu(this.norms[k++]!.forward(o, this.depthwise.forward(o, x)));
    x = this.se.forward(o, x);
    // The projection has no activation (geffnet: pw_act=False for ds blocks, none after bn3 for ir blocks).
    x = this.norms[k++]!.forward(o, this.project.forward(o, x));
    return this.residual ? o.add(x, input) : x;
  }

  prepare(): void {
    for (const norm of this.norms) norm.prepare();
  }

  dispose(): void {
    for (const norm of this.norms) norm.dispose();
  }
}

/** The encoder's feature maps the normal_bae decoder reads (ControlNet's `features[4, 5, 6, 8, 11]`). */
export interface EncoderFeatures<T> {
  /** blocks[0]: 24 channels, 1/2 resolution. */
  block0: T;
  /** blocks[1]: 40 channels, 1/4. */
  block1: T;
  /** blocks[2]: 64 channels, 1/8. */
  block2: T;
  /** blocks[4]: 176 channels, 1/16. */
  block3: T;
  /** conv_head (before bn2 / act2): 2048 channels, 1/32. */
  block4: T;
}

/**
 * EfficientNet-B5 (AdvProp, TF port) as normal_bae's `Encoder` runs it: every child of the geffnet model in order,
 * keeping the outputs the decoder uses. Parameters under `prefix` (`encoder.original_model.`); `bn2` of the head is
 * declared (the checkpoint holds it) but unused, since the decoder reads the head conv's raw output.
 */
export class EfficientNetB5Encoder implements Preparable {
  private readonly stem: Conv;
  private readonly stemNorm: FoldedBatchNorm;
  private readonly stages: Block[][] = [];
  private readonly head: Conv;
  constructor(params: ParamStore, prefix: string) {
    this.stem = new Conv(params, `${prefix}conv_stem`, 3, STEM, 3, { stride: 2, bias: false, pad: 'same' });
    this.stemNorm = new FoldedBatchNorm(params, `${prefix}bn1`, STEM, BN_EPS_TF);
    let channels = STEM;
    for (const [s, stage] of B5_STAGES.entries()) {
      const blocks: Block[] = [];
      for (let b = 0; b < stage.repeats; b++) {
        blocks.push(
          new Block(params, `${prefix}blocks.${s}.${b}`, channels, stage, b === 0 ? stage.stride : 1),
        );
        channels = stage.out;
      }
      this.stages.push(blocks);
    }
    this.head = new Conv(params, `${prefix}conv_head`, channels, HEAD, 1, { bias: false });
    // Declared only: the checkpoint holds the head's bn2, which the decoder never reads.
    new FoldedBatchNorm(params, `${prefix}bn2`, HEAD, BN_EPS_TF);
  }

  forward<T>(o: Ops<T>, image: T): EncoderFeatures<T> {
    let x = o.silu(this.stemNorm.forward(o, this.stem.forward(o, image)));
    const outs: T[] = [];
    for (const blocks of this.stages) {
      for (const block of blocks) x = block.forward(o, x);
      outs.push(x);
    }
    return {
      block0: outs[0]!,
      block1: outs[1]!,
      block2: outs[2]!,
      block3: outs[4]!,
      block4: this.head.forward(o, x),
    };
  }

  prepare(): void {
    this.stemNorm.prepare();
    for (const blocks of this.stages) for (const block of blocks) block.prepare();
  }

  dispose(): void {
    this.stemNorm.dispose();
    for (const blocks of this.stages) for (const block of blocks) block.dispose();
  }
}
