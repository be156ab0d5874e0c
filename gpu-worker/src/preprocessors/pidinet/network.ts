import * as tf from '@tensorflow/tfjs';
import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';

/** A pixel-difference convolution type (PiDiNet): central, angular, radial, or a vanilla conv. */
export type Pdc = 'cd' | 'ad' | 'rd' | 'cv';

/** PiDiNet's `carv4` layout (layers 0-15: init_block, then the 16 blocks' depthwise convs 1-15). */
const CARV4: readonly Pdc[] = [
  'cd',
  'ad',
  'rd',
  'cv',
  'cd',
  'ad',
  'rd',
  'cv',
  'cd',
  'ad',
  'rd',
  'cv',
  'cd',
  'ad',
  'rd',
  'cv',
];
/** The 15 PDC blocks: name, input and output channels, stride (inplane 60). */
const BLOCKS: readonly [string, number, number, number][] = [
  ['block1_1', 60, 60, 1],
  ['block1_2', 60, 60, 1],
  ['block1_3', 60, 60, 1],
  ['block2_1', 60, 120, 2],
  ['block2_2', 120, 120, 1],
  ['block2_3', 120, 120, 1],
  ['block2_4', 120, 120, 1],
  ['block3_1', 120, 240, 2],
  ['block3_2', 240, 240, 1],
  ['block3_3', 240, 240, 1],
  ['block3_4', 240, 240, 1],
  ['block4_1', 240, 240, 2],
  ['block4_2', 240, 240, 1],
  ['block4_3', 240, 240, 1],
  ['block4_4', 240, 240, 1],
];
/** Channels of the four stages fused into the edge map (x1..x4), and CDCM's width (`dil`). */
const FUSE = [60, 120, 240, 240];
const DIL = 24;
/** CDCM's four dilated 3x3 convs (padding = dilation). */
const CDCM_DILATIONS = [5, 7, 9, 11];

/** Index of each tap of a 3x3 kernel after `ad`'s clockwise shift (createConvFunc('ad')). */
const AD_SHIFT = [3, 0, 1, 6, 4, 2, 7, 8, 5];
/** Taps of the 5x5 kernel an `rd` conv writes its 8 outer weights to (+) and its ring around the centre (-). */
const RD_OUTER = [0, 2, 4, 10, 14, 20, 22, 24];
const RD_INNER = [6, 7, 8, 11, 13, 16, 17, 18];

/**
 * The vanilla kernel equal to a pixel-difference conv (PiDiNet's convert_pdc), from an HWIO 3x3 kernel:
 * cd subtracts the kernel's sum at the centre tap (conv(x, W) - conv1x1(x, sum W)), ad takes W - W[clockwise],
 * rd spreads the 8 outer weights over a 5x5 kernel (+ on the outer ring, - on the inner ring, centre 0).
 */
export function convertPdc(kernel: tf.Tensor, pdc: Pdc): tf.Tensor4D {
  const [kh, kw, cin, cout] = kernel.shape as [number, number, number, number];
  if (kh !== 3 || kw !== 3) throw new Error(`pixel-difference conv needs a 3x3 kernel, got ${kh}x${kw}`);
  const w = kernel.dataSync() as Float32Array;
  const block = cin * cout;
  const tap = (t: number) => w.subarray(t * block, (t + 1) * block);
  if (pdc === 'cv') return tf.tensor4d(w.slice(), [3, 3, cin, cout]);
  if (pdc === 'cd') {
    const out = w.slice();
    const centre = out.subarray(4 * block, 5 * block);
    for (let t = 0; t < 9; t++) {
      const values = tap(t);
      for (let i = 0; i < block; i++) centre[i] = centre[i]! - values[i]!;
    }
    return tf.tensor4d(out, [3, 3, cin, cout]);
  }
  if (pdc === 'ad') {
    const out = new Float32Array(w.length);
    for (let t = 0; t < 9; t++) {
      const a = tap(t);
      const b = tap(AD_SHIFT[t]!);
      for (let i = 0; i < block; i++) out[t * block + i] = a[i]! - b[i]!;
    }
    return tf.tensor4d(out, [3, 3, cin, cout]);
  }
  const out = new Float32Array(25 * block);
  for (let k = 0; k < 8; k++) {
    const values = tap(k + 1);
    for (let i = 0; i < block; i++) {
      out[RD_OUTER[k]! * block + i] = values[i]!;
      out[RD_INNER[k]! * block + i] = -values[i]!;
    }
  }
  return tf.tensor4d(out, [5, 5, cin, cout]);
}

/**
 * ControlNet 1.1's PiDiNet (annotator/pidinet `pidinet()`: carv4, 60 channels, dil 24, sa; checkpoint
 * table5_pidinet.pth). The pixel-difference convs run as the equivalent vanilla convs, converted when the weights
 * load. Input BGR in [0, 1]; outputs [edge, side1..4]: the sigmoids the model returns, edge (its last) first.
 */
export class PidinetNetwork implements Network {
  readonly kind = 'pidinet';
  readonly params = new ParamStore();
  /** Converted kernels of the pixel-difference convs (init_block and each block's conv1), by parameter name. */
  private readonly kernels = new Map<string, { kernel: tf.Tensor4D; pad: number }>();

  constructor() {
    const p = this.params;
    p.declare('init_block.weight', [60, 3, 3, 3]);
    for (const [name, cin, cout, stride] of BLOCKS) {
      if (stride > 1) {
        p.declare(`${name}.shortcut.weight`, [cout, cin, 1, 1]);
        p.declare(`${name}.shortcut.bias`, [cout]);
      }
      p.declare(`${name}.conv1.weight`, [cin, 1, 3, 3]);
      p.declare(`${name}.conv2.weight`, [cout, cin, 1, 1]);
    }
    for (let i = 0; i < 4; i++) {
      p.declare(`dilations.${i}.conv1.weight`, [DIL, FUSE[i]!, 1, 1]);
      p.declare(`dilations.${i}.conv1.bias`, [DIL]);
      for (let j = 1; j <= 4; j++) p.declare(`dilations.${i}.conv2_${j}.weight`, [DIL, DIL, 3, 3]);
      p.declare(`attentions.${i}.conv1.weight`, [4, DIL, 1, 1]);
      p.declare(`attentions.${i}.conv1.bias`, [4]);
      p.declare(`attentions.${i}.conv2.weight`, [1, 4, 3, 3]);
      p.declare(`conv_reduces.${i}.conv.weight`, [1, DIL, 1, 1]);
      p.declare(`conv_reduces.${i}.conv.bias`, [1]);
    }
    p.declare('classifier.weight', [1, 4, 1, 1]);
    p.declare('classifier.bias', [1]);
  }

  /** Converts the loaded pixel-difference kernels to vanilla ones (call once after loading). */
  prepare(): void {
    this.releaseKernels();
    const names = ['init_block.weight', ...BLOCKS.map(([name]) => `${name}.conv1.weight`)];
    for (const [layer, name] of names.entries()) {
      const pdc = CARV4[layer]!;
      this.kernels.set(name, { kernel: convertPdc(this.params.get(name), pdc), pad: pdc === 'rd' ? 2 : 1 });
    }
  }

  private pdcConv<T>(ops: Ops<T>, x: T, name: string, groups: number): T {
    const converted = this.kernels.get(name);
    if (!converted) throw new Error('PidinetNetwork: weights not prepared');
    return ops.conv(x, converted.kernel, undefined, { pad: converted.pad, groups });
  }

  forward<T>(ops: Ops<T>, [image]: T[]): NetworkOutput<T>[] {
    const p = (name: string) => this.params.get(name);
    const [, height, width] = ops.imageShape(image!);
    let x = this.pdcConv(ops, image!, 'init_block.weight', 1);
    const stages: T[] = [];
    for (const [b, [name, cin, , stride]] of BLOCKS.entries()) {
      // PDCBlock: [pool], depthwise PDC conv, relu, 1x1 conv, plus the (1x1-projected when strided) input.
      if (stride > 1) {
        stages.push(x);
        x = ops.maxPool(x, 2, 2);
      }
      let y = ops.relu(this.pdcConv(ops, x, `${name}.conv1.weight`, cin));
      y = ops.conv(y, p(`${name}.conv2.weight`), undefined);
      const shortcut = stride > 1 ? ops.conv(x, p(`${name}.shortcut.weight`), p(`${name}.shortcut.bias`)) : x;
      x = ops.add(y, shortcut);
      if (b === BLOCKS.length - 1) stages.push(x);
    }
    const sides = stages.map((stage, i) => {
      // CDCM: relu, 1x1 conv, then the sum of four dilated 3x3 convs.
      const d = ops.conv(ops.relu(stage), p(`dilations.${i}.conv1.weight`), p(`dilations.${i}.conv1.bias`));
      let fused: T | undefined;
      for (const [j, dilation] of CDCM_DILATIONS.entries()) {
        const branch = ops.conv(d, p(`dilations.${i}.conv2_${j + 1}.weight`), undefined, {
          pad: dilation,
          dilation,
        });
        fused = fused === undefined ? branch : ops.add(fused, branch);
      }
      // CSAM: x * sigmoid(conv3x3(conv1x1(relu(x)))), the 1-channel attention broadcast over channels.
      const a = ops.conv(
        ops.relu(fused!),
        p(`attentions.${i}.conv1.weight`),
        p(`attentions.${i}.conv1.bias`),
      );
      const attention = ops.sigmoid(ops.conv(a, p(`attentions.${i}.conv2.weight`), undefined, { pad: 1 }));
      const attended = ops.mul(fused!, attention);
      // MapReduce, then back to the input size (F.interpolate bilinear, align_corners=False).
      const e = ops.conv(attended, p(`conv_reduces.${i}.conv.weight`), p(`conv_reduces.${i}.conv.bias`));
      return ops.resize(e, height, width, 'bilinear', false);
    });
    const edge = ops.conv(ops.concatChannels(sides), p('classifier.weight'), p('classifier.bias'));
    return [edge, ...sides].map((value) => ({ value: ops.sigmoid(value), image: true }));
  }

  private releaseKernels(): void {
    for (const { kernel } of this.kernels.values()) kernel.dispose();
    this.kernels.clear();
  }

  dispose(): void {
    this.params.dispose();
    this.releaseKernels();
  }
}
