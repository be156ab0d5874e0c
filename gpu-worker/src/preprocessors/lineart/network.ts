import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';

/** InstanceNorm2d's eps (affine=False, no running stats). */
const EPS = 1e-5;

/**
 * The informative-drawings Generator(3, 1, n_residual_blocks=3) of ControlNet 1.1's annotator/lineart
 * (sk_model.pth, sk_model2.pth): reflection-padded 7x7 stem, two stride-2 convs, residual blocks, two transposed
 * convs, a 7x7 head and a sigmoid, InstanceNorm (no affine) throughout. Input [1, H, W, 3] RGB / 255 (H and W
 * multiples of 4 give an output of the input's size); output [1, H, W, 1] in (0, 1).
 */
export class LineartNetwork implements Network {
  readonly params = new ParamStore();

  constructor(
    readonly kind: string,
    private readonly residualBlocks = 3,
  ) {
    this.conv('model0.1', 3, 64, 7);
    this.conv('model1.0', 64, 128, 3);
    this.conv('model1.3', 128, 256, 3);
    for (let i = 0; i < residualBlocks; i++) {
      this.conv(`model2.${i}.conv_block.1`, 256, 256, 3);
      this.conv(`model2.${i}.conv_block.5`, 256, 256, 3);
    }
    // ConvTranspose2d weights are [in, out, kh, kw].
    this.params.declare('model3.0.weight', [256, 128, 3, 3]);
    this.params.declare('model3.0.bias', [128]);
    this.params.declare('model3.3.weight', [128, 64, 3, 3]);
    this.params.declare('model3.3.bias', [64]);
    this.conv('model4.1', 64, 1, 7);
  }

  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const p = (name: string) => this.params.get(name);
    const conv = (x: T, name: string, options: { stride?: number; pad?: number } = {}) =>
      ops.conv(x, p(`${name}.weight`), p(`${name}.bias`), options);
    const normRelu = (x: T) => ops.relu(ops.instanceNorm(x, EPS));
    let x = normRelu(conv(ops.padImage(inputs[0]!, 3, 'reflect'), 'model0.1'));
    x = normRelu(conv(x, 'model1.0', { stride: 2, pad: 1 }));
    x = normRelu(conv(x, 'model1.3', { stride: 2, pad: 1 }));
    for (let i = 0; i < this.residualBlocks; i++) {
      const block = `model2.${i}.conv_block`;
      let y = normRelu(conv(ops.padImage(x, 1, 'reflect'), `${block}.1`));
      y = ops.instanceNorm(conv(ops.padImage(y, 1, 'reflect'), `${block}.5`), EPS);
      x = ops.add(x, y);
    }
    x = normRelu(ops.convTranspose(x, p('model3.0.weight'), p('model3.0.bias'), 2, 1, 1));
    x = normRelu(ops.convTranspose(x, p('model3.3.weight'), p('model3.3.bias'), 2, 1, 1));
    x = ops.sigmoid(conv(ops.padImage(x, 3, 'reflect'), 'model4.1'));
    return [{ value: x, image: true }];
  }

  private conv(name: string, inputs: number, outputs: number, kernel: number): void {
    this.params.declare(`${name}.weight`, [outputs, inputs, kernel, kernel]);
    this.params.declare(`${name}.bias`, [outputs]);
  }
}
