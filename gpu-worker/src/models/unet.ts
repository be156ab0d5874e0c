import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { tfOps } from '../engine/tf-ops.ts';
import type { UNetConfig } from './config.ts';
import { Conv2d, GroupNorm } from './layers.ts';
import { ParamStore } from './params.ts';
import {
  type BlockSequence,
  buildUNetDecoder,
  buildUNetEncoder,
  timestepEmbedding,
  type UNetEncoder,
} from './unet-blocks.ts';

/**
 * The SD UNet (ldm `UNetModel`, as cldm's `ControlledUnetModel` runs it): eps prediction over NHWC latents,
 * optionally adding 13 ControlNet residuals (12 skips + middle). Parameter names are those under
 * `model.diffusion_model.` in the original checkpoint.
 */
export class UNetModel {
  /** Declared parameters and their loaded values. */
  readonly params = new ParamStore();
  private readonly encoder: UNetEncoder;
  private readonly outputBlocks: BlockSequence[];
  private readonly outNorm: GroupNorm;
  private readonly outConv: Conv2d;

  constructor(readonly config: UNetConfig) {
    this.encoder = buildUNetEncoder(this.params, config);
    const decoder = buildUNetDecoder(this.params, config, this.encoder);
    this.outputBlocks = decoder.outputBlocks;
    this.outNorm = new GroupNorm(this.params, 'out.0', decoder.channels, 1e-5);
    this.outConv = new Conv2d(this.params, 'out.2', decoder.channels, config.out_channels, 3);
  }

  /** Number of residuals a ControlNet feeds this UNet (input blocks + middle). */
  get controlCount(): number {
    return this.encoder.inputBlocks.length + 1;
  }

  /** Output channels of each residual a ControlNet feeds (skips, then the middle). */
  get controlChannels(): number[] {
    return [...this.encoder.inputChannels, this.encoder.middleChannels];
  }

  /**
   * eps = UNet(x, t, context) with `controls` (already scaled) added to the middle output and to each skip.
   * x: [B, H, W, C] latent; timesteps: one per batch entry; context: [B, tokens, dim].
   */
  forward(
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    controls?: tf.Tensor4D[],
  ): tf.Tensor4D {
    return tf.tidy(
      () =>
        this.build(
          tfOps,
          x,
          timestepEmbedding(timesteps, this.config.model_channels),
          context,
          controls,
        ) as tf.Tensor4D,
    );
  }

  /** The forward pass on any backend; `sinusoids` is {@link timestepEmbedding} of the timesteps. */
  build<T>(o: Ops<T>, x: T, sinusoids: T, context: T, controls?: T[]): T {
    if (controls && controls.length !== this.controlCount) {
      throw new Error(`expected ${this.controlCount} control residuals, got ${controls.length}`);
    }
    return o.scope(() => {
      const emb = this.encoder.timeEmbedding.forward(o, sinusoids);
      const skips: T[] = [];
      let h = x;
      for (const block of this.encoder.inputBlocks) {
        h = block.forward(o, h, emb, context);
        skips.push(h);
      }
      h = this.encoder.middleBlock.forward(o, h, emb, context);
      if (controls) h = o.add(h, controls[controls.length - 1]!);
      this.outputBlocks.forEach((block, j) => {
        const index = skips.length - 1 - j;
        const skip = controls ? o.add(skips[index]!, controls[index]!) : skips[index]!;
        h = block.forward(o, o.concatChannels([h, skip]), emb, context);
      });
      return this.outConv.forward(o, o.silu(this.outNorm.forward(o, h)));
    });
  }

  /** Frees the weights. */
  dispose(): void {
    this.params.dispose();
  }
}
