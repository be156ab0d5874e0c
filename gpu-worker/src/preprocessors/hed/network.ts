import * as tf from '@tensorflow/tfjs';
import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';

/** ControlNetHED_Apache2's five DoubleConvBlocks: [input channels, output channels, convs]. */
const BLOCKS: readonly [number, number, number][] = [
  [3, 64, 2],
  [64, 128, 2],
  [128, 256, 3],
  [256, 512, 3],
  [512, 512, 3],
];

/**
 * ControlNet 1.1's HED (annotator/hed `ControlNetHED_Apache2`, checkpoint ControlNetHED.pth) with the
 * detector's fusion: input RGB 0..255 (not normalised); outputs [fused, projection1..5], where projection k is
 * block k's 1-channel side output at its own scale and `fused` is the mean of the five, each resized
 * bilinearly (half-pixel, = cv2.INTER_LINEAR on float32) to the input size: the logit map before the sigmoid.
 */
export class HedNetwork implements Network {
  readonly kind = 'hed';
  readonly params = new ParamStore();
  /** -norm as a per-channel shift [3], made once the weights are loaded. */
  private shift: tf.Tensor | undefined;
  private ones: tf.Tensor | undefined;

  constructor() {
    this.params.declare('norm', [1, 3, 1, 1]);
    for (const [b, [cin, cout, convs]] of BLOCKS.entries()) {
      for (let j = 0; j < convs; j++) {
        this.params.declare(`block${b + 1}.convs.${j}.weight`, [cout, j === 0 ? cin : cout, 3, 3]);
        this.params.declare(`block${b + 1}.convs.${j}.bias`, [cout]);
      }
      this.params.declare(`block${b + 1}.projection.weight`, [1, cout, 1, 1]);
      this.params.declare(`block${b + 1}.projection.bias`, [1]);
    }
  }

  /** Derives the input shift from the loaded `norm` (call once after loading). */
  prepare(): void {
    this.shift?.dispose();
    this.ones?.dispose();
    this.shift = tf.tidy(() => tf.neg(this.params.get('norm').reshape([3])));
    this.ones = tf.ones([3]);
  }

  forward<T>(ops: Ops<T>, [image]: T[]): NetworkOutput<T>[] {
    if (!this.shift || !this.ones) throw new Error('HedNetwork: weights not prepared');
    const p = (name: string) => this.params.get(name);
    const [, height, width] = ops.imageShape(image!);
    // h = x - self.norm
    let h = ops.channelAffine(image!, this.ones, this.shift);
    const projections: T[] = [];
    for (const [b, [, , convs]] of BLOCKS.entries()) {
      if (b > 0) h = ops.maxPool(h, 2, 2);
      for (let j = 0; j < convs; j++)
        h = ops.relu(
          ops.conv(h, p(`block${b + 1}.convs.${j}.weight`), p(`block${b + 1}.convs.${j}.bias`), { pad: 1 }),
        );
      projections.push(ops.conv(h, p(`block${b + 1}.projection.weight`), p(`block${b + 1}.projection.bias`)));
    }
    // np.mean(np.stack([cv2.resize(e, (W, H), INTER_LINEAR) for e in edges], 2), 2): summed in order, then / 5.
    let sum: T | undefined;
    for (const e of projections) {
      const resized = ops.resize(e, height, width, 'bilinear', false);
      sum = sum === undefined ? resized : ops.add(sum, resized);
    }
    const fused = ops.mulScalar(sum!, 1 / projections.length);
    return [fused, ...projections].map((value) => ({ value, image: true }));
  }

  dispose(): void {
    this.params.dispose();
    this.shift?.dispose();
    this.ones?.dispose();
    this.shift = undefined;
    this.ones = undefined;
  }
}
