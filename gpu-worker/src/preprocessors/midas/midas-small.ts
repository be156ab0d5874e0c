import * as tf from '@tensorflow/tfjs';
import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { samePad } from './dpt-hybrid.ts';
import { conv, declareConv, declareDepthHead, declareFusion, depthHead, fusion } from './layers.ts';

/** MiDaS v2.1 small, the MiDaS release's file name (not among lllyasviel/Annotators' files). */
export const MIDAS_SMALL_FILE = 'midas_v21_small_256.pt';

/** geffnet tf_efficientnet_lite3's BatchNorm eps (BN_EPS_TF_DEFAULT). */
const BN_EPS = 1e-3;
/** MidasNet_small(features=64, expand=True): fusion widths 64, 128, 256, 512. */
const FEATURES = 64;

/**
 * tf_efficientnet_lite3's block stages as MidasNet_small regroups them (pretrained.layer1..4 =
 * [stem, blocks[0:2]], blocks[2:3], blocks[3:5], blocks[5:9]): module prefix, block type, repeats, depthwise
 * kernel, first stride, output channels (channel multiplier 1.2 and depth multiplier 1.4 applied, first and last
 * stage's depth fixed).
 */
const STAGES = [
  { prefix: 'pretrained.layer1.3', ds: true, repeats: 1, kernel: 3, stride: 1, out: 24 },
  { prefix: 'pretrained.layer1.4', ds: false, repeats: 3, kernel: 3, stride: 2, out: 32 },
  { prefix: 'pretrained.layer2.0', ds: false, repeats: 3, kernel: 5, stride: 2, out: 48 },
  { prefix: 'pretrained.layer3.0', ds: false, repeats: 5, kernel: 3, stride: 2, out: 96 },
  { prefix: 'pretrained.layer3.1', ds: false, repeats: 5, kernel: 5, stride: 1, out: 136 },
  { prefix: 'pretrained.layer4.0', ds: false, repeats: 6, kernel: 5, stride: 2, out: 232 },
  { prefix: 'pretrained.layer4.1', ds: false, repeats: 1, kernel: 3, stride: 1, out: 384 },
] as const;
/** The stages whose outputs are pretrained.layer1..4. */
const LAYER_ENDS = new Set([1, 2, 4, 6]);
const STEM_OUT = 32;
const EXPANSION = 6;

/** The checkpoint's own layout (MidasNet_small.state_dict()); BatchNorm step counters are not read. */
export const midasSmallKeys: KeyMapping = {
  fileKeys: (name) => [name],
  belongs: (key) => !key.endsWith('num_batches_tracked'),
};

/**
 * MiDaS v2.1 small (MidasNet_small, EfficientNet-Lite3 backbone, features 64, expand, non_negative) run the way
 * MidasDetector runs its model: input [1, H, W, 3] in [-1, 1], H and W multiples of 32; output the raw inverse
 * depth [1, H, W, 1].
 */
export class MidasSmallNetwork implements Network {
  readonly kind = 'midas-v21-small';
  readonly params = new ParamStore();
  /** BatchNorms folded to per-channel scale and shift ({@link foldBatchNorms}), by BN module name. */
  private readonly affine = new Map<string, { scale: tf.Tensor; shift: tf.Tensor }>();
  private readonly batchNorms: string[] = [];

  constructor() {
    const p = this.params;
    declareConv(p, 'pretrained.layer1.0', STEM_OUT, 3, 3, false);
    this.declareBn('pretrained.layer1.1', STEM_OUT);
    let channels: number = STEM_OUT;
    for (const stage of STAGES) {
      for (let b = 0; b < stage.repeats; b++) {
        const block = `${stage.prefix}.${b}.`;
        if (stage.ds) {
          declareConv(p, `${block}conv_dw`, channels, 1, stage.kernel, false);
          this.declareBn(`${block}bn1`, channels);
          declareConv(p, `${block}conv_pw`, stage.out, channels, 1, false);
          this.declareBn(`${block}bn2`, stage.out);
        } else {
          const mid = channels * EXPANSION;
          declareConv(p, `${block}conv_pw`, mid, channels, 1, false);
          this.declareBn(`${block}bn1`, mid);
          declareConv(p, `${block}conv_dw`, mid, 1, stage.kernel, false);
          this.declareBn(`${block}bn2`, mid);
          declareConv(p, `${block}conv_pwl`, stage.out, mid, 1, false);
          this.declareBn(`${block}bn3`, stage.out);
        }
        channels = stage.out;
      }
    }
    const widths = [FEATURES, 2 * FEATURES, 4 * FEATURES, 8 * FEATURES];
    for (const [i, inChannels] of [32, 48, 136, 384].entries())
      declareConv(p, `scratch.layer${i + 1}_rn`, widths[i]!, inChannels, 3, false);
    // refinenet4..2 halve the width (expand=True); refinenet1 keeps 64.
    for (let i = 1; i <= 4; i++)
      declareFusion(p, `scratch.refinenet${i}`, widths[i - 1]!, i === 1 ? FEATURES : widths[i - 2]!);
    declareDepthHead(p, FEATURES);
  }

  private declareBn(name: string, channels: number): void {
    for (const part of ['weight', 'bias', 'running_mean', 'running_var'])
      this.params.declare(`${name}.${part}`, [channels]);
    this.batchNorms.push(name);
  }

  /** Folds every loaded BatchNorm (eval mode) into a [C] scale and shift (call once after loading). */
  foldBatchNorms(): void {
    for (const name of this.batchNorms) {
      const [gamma, beta, mean, variance] = ['weight', 'bias', 'running_mean', 'running_var'].map(
        (part) => this.params.get(`${name}.${part}`).dataSync() as Float32Array,
      ) as [Float32Array, Float32Array, Float32Array, Float32Array];
      const scale = new Float32Array(gamma.length);
      const shift = new Float32Array(gamma.length);
      for (let c = 0; c < gamma.length; c++) {
        scale[c] = gamma[c]! / Math.sqrt(variance[c]! + BN_EPS);
        shift[c] = beta[c]! - mean[c]! * scale[c]!;
      }
      this.affine.get(name)?.scale.dispose();
      this.affine.get(name)?.shift.dispose();
      this.affine.set(name, { scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) });
    }
  }

  /** Frees the folded BatchNorm tensors (the weights belong to the ParamStore). */
  disposeConstants(): void {
    for (const { scale, shift } of this.affine.values()) tf.dispose([scale, shift]);
    this.affine.clear();
  }

  private bn<T>(ops: Ops<T>, name: string, x: T, relu6: boolean): T {
    const folded = this.affine.get(name);
    if (!folded) throw new Error(`BatchNorm ${name} is not folded: call foldBatchNorms() after loading`);
    const y = ops.channelAffine(x, folded.scale, folded.shift);
    return relu6 ? ops.clip(y, 0, 6) : y;
  }

  /**
   * geffnet's 'same' conv: stride 1 pads (k - 1) / 2 on every side, stride 2 is Conv2dSameExport's
   * TF-style asymmetric pad for this input size. Depthwise when `depthwise`.
   */
  private sameConv<T>(ops: Ops<T>, name: string, x: T, stride: number, depthwise = false): T {
    const weight = this.params.get(`${name}.weight`);
    const kernel = weight.shape[0]!;
    const [, h, w, c] = ops.imageShape(x);
    const pad: [number, number, number, number] =
      stride === 1
        ? [(kernel - 1) / 2, (kernel - 1) / 2, (kernel - 1) / 2, (kernel - 1) / 2]
        : [...samePad(h, kernel, stride), ...samePad(w, kernel, stride)];
    return ops.conv(x, weight, undefined, { stride, pad, groups: depthwise ? c : 1 });
  }

  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const [n, height, width] = ops.imageShape(inputs[0]!);
    if (n !== 1 || height % 32 !== 0 || width % 32 !== 0)
      throw new Error(
        `MiDaS v2.1 small takes one image with sides divisible by 32, got ${n}x${height}x${width}`,
      );
    let x = this.sameConv(ops, 'pretrained.layer1.0', inputs[0]!, 2);
    x = this.bn(ops, 'pretrained.layer1.1', x, true);
    const layers: T[] = [];
    let channels: number = STEM_OUT;
    for (const [s, stage] of STAGES.entries()) {
      for (let b = 0; b < stage.repeats; b++) {
        const block = `${stage.prefix}.${b}.`;
        const stride = b === 0 ? stage.stride : 1;
        const residual = stride === 1 && channels === stage.out;
        let y: T;
        if (stage.ds) {
          // DepthwiseSeparableConv: dw -> BN -> ReLU6 -> pw -> BN (no activation: act2 is Identity).
          y = this.bn(ops, `${block}bn1`, this.sameConv(ops, `${block}conv_dw`, x, stride, true), true);
          y = this.bn(ops, `${block}bn2`, this.sameConv(ops, `${block}conv_pw`, y, 1), false);
        } else {
          // InvertedResidual: pw expand -> BN -> ReLU6 -> dw -> BN -> ReLU6 -> pw linear -> BN.
          y = this.bn(ops, `${block}bn1`, this.sameConv(ops, `${block}conv_pw`, x, 1), true);
          y = this.bn(ops, `${block}bn2`, this.sameConv(ops, `${block}conv_dw`, y, stride, true), true);
          y = this.bn(ops, `${block}bn3`, this.sameConv(ops, `${block}conv_pwl`, y, 1), false);
        }
        x = residual ? ops.add(y, x) : y;
        channels = stage.out;
      }
      if (LAYER_ENDS.has(s)) layers.push(x);
    }
    const rn = layers.map((layer, i) =>
      conv(ops, this.params, `scratch.layer${i + 1}_rn`, layer, { pad: 1 }),
    );
    let path = fusion(ops, this.params, 'scratch.refinenet4', rn[3]!);
    path = fusion(ops, this.params, 'scratch.refinenet3', path, rn[2]);
    path = fusion(ops, this.params, 'scratch.refinenet2', path, rn[1]);
    path = fusion(ops, this.params, 'scratch.refinenet1', path, rn[0]);
    // MidasNet_small's head upsamples with Interpolate's default align_corners=False.
    return [{ value: depthHead(ops, this.params, path, false), image: true }];
  }
}
