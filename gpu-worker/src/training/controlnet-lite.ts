import type * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { tfOps } from '../engine/tf-ops.ts';
import type { ControlNetConfig } from '../models/config.ts';
import { type ControlNetHead, HintEncoder } from '../models/controlnet.ts';
import { Conv2d } from '../models/layers.ts';
import { ParamStore } from '../models/params.ts';

/** One block of the UNet encoder as ControlNet-lite replaces it: its output channels and stride. */
interface LiteBlock {
  conv: Conv2d;
  zero: Conv2d;
}

/**
 * The paper's "ControlNet-lite" ablation (section 4.3): each block of the trainable copy replaced by one
 * convolution (3x3, SiLU; stride 2 where the encoder downsamples), with the same hint encoder and the same zero
 * convolutions joining it to the locked UNet. It sees neither the timestep nor the prompt, and has a small fraction
 * of the copy's parameters: the ablation asks whether the copy's capacity matters. Training only: it has no
 * checkpoint layout and the worker never serves it.
 */
export class ControlNetLiteModel implements ControlNetHead {
  readonly params = new ParamStore();
  private readonly hintEncoder: HintEncoder;
  /** `input_blocks.0.0`, the UNet's first conv on the latent (copied from the base like the full copy's). */
  private readonly convIn: Conv2d;
  private readonly zeroIn: Conv2d;
  private readonly blocks: LiteBlock[] = [];
  private readonly middle: LiteBlock;

  constructor(readonly config: ControlNetConfig) {
    const mc = config.model_channels;
    this.hintEncoder = new HintEncoder(this.params, config.hint_channels, mc);
    this.convIn = new Conv2d(this.params, 'input_blocks.0.0', config.in_channels, mc, 3);
    this.zeroIn = new Conv2d(this.params, 'zero_convs.0.0', mc, mc, 1);
    // The same block sequence as the UNet encoder (ldm numbering): res blocks per level, then a downsample.
    let ch = mc;
    const addBlock = (out: number, stride: number) => {
      const k = this.blocks.length + 1;
      this.blocks.push({
        conv: new Conv2d(this.params, `lite_blocks.${k}`, ch, out, 3, stride),
        zero: new Conv2d(this.params, `zero_convs.${k}.0`, out, out, 1),
      });
      ch = out;
    };
    config.channel_mult.forEach((mult, level) => {
      for (let r = 0; r < config.num_res_blocks; r++) addBlock(mult * mc, 1);
      if (level !== config.channel_mult.length - 1) addBlock(ch, 2);
    });
    this.middle = {
      conv: new Conv2d(this.params, 'lite_middle', ch, ch, 3),
      zero: new Conv2d(this.params, 'middle_block_out.0', ch, ch, 1),
    };
  }

  get controlCount(): number {
    return this.blocks.length + 2;
  }

  encodeHint(hint: tf.Tensor4D): tf.Tensor4D {
    return this.buildHint(tfOps, hint) as tf.Tensor4D;
  }

  buildHint<T>(o: Ops<T>, hint: T): T {
    return this.hintEncoder.encode(o, hint);
  }

  forward(
    x: tf.Tensor4D,
    _timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ): tf.Tensor4D[] {
    return this.build(tfOps, x, x, context, encodedHint) as tf.Tensor4D[];
  }

  build<T>(o: Ops<T>, x: T, _sinusoids: T, _context: T, encodedHint: T): T[] {
    return o.scope(() => {
      let h = o.add(this.convIn.forward(o, x), encodedHint);
      const outs = [this.zeroIn.forward(o, h)];
      for (const block of this.blocks) {
        h = o.silu(block.conv.forward(o, h));
        outs.push(block.zero.forward(o, h));
      }
      h = o.silu(this.middle.conv.forward(o, h));
      outs.push(this.middle.zero.forward(o, h));
      return outs;
    });
  }

  dispose(): void {
    this.params.dispose();
  }
}
