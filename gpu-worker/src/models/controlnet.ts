import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { tfOps } from '../engine/tf-ops.ts';
import type { ControlNetConfig } from './config.ts';
import { Conv2d } from './layers.ts';
import { ParamStore } from './params.ts';
import { buildUNetEncoder, timestepEmbedding, type UNetEncoder } from './unet-blocks.ts';

/** Channels of the hint encoder's eight 3x3 convs (the released code, not the paper's 4x4 description). */
const HINT_CHANNELS = [16, 16, 32, 32, 96, 96, 256] as const;
const HINT_STRIDES = [1, 1, 2, 1, 2, 1, 2] as const;

/**
 * What sampling and training need of a ControlNet: its hint encoder, its residuals per step and its weights.
 * {@link ControlNetModel} is the real one; the training ablation's ControlNet-lite is another. The `build*`
 * methods are the backend-neutral definitions the ONNX engine builds graphs from.
 */
export interface ControlNetHead {
  readonly params: ParamStore;
  readonly config: ControlNetConfig;
  /** Number of residuals {@link forward} returns (13 for SD1.5). */
  readonly controlCount: number;
  /** The hint encoder on a control image [B, 8h, 8w, hint_channels] in [0, 1] (once per request). */
  encodeHint(hint: tf.Tensor4D): tf.Tensor4D;
  /** The 13 (for SD1.5) unscaled residuals for latent x, given the encoded hint. */
  forward(
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ): tf.Tensor4D[];
  /** {@link encodeHint} on any backend. */
  buildHint<T>(o: Ops<T>, hint: T): T;
  /** {@link forward} on any backend; `sinusoids` is {@link timestepEmbedding} of the timesteps. */
  build<T>(o: Ops<T>, x: T, sinusoids: T, context: T, encodedHint: T): T[];
  dispose(): void;
}

/** cldm's `input_hint_block`: eight 3x3 convs with SiLU between, 8x down to the latent size, `out` channels. */
export class HintEncoder {
  private readonly convs: Conv2d[] = [];

  constructor(params: ParamStore, hintChannels: number, out: number) {
    let channels = hintChannels;
    HINT_CHANNELS.forEach((width, i) => {
      this.convs.push(new Conv2d(params, `input_hint_block.${2 * i}`, channels, width, 3, HINT_STRIDES[i]));
      channels = width;
    });
    this.convs.push(new Conv2d(params, 'input_hint_block.14', channels, out, 3));
  }

  /** [B, 8h, 8w, C] in [0, 1] -> [B, h, w, out]. */
  encode<T>(o: Ops<T>, hint: T): T {
    return o.scope(() => {
      let h = hint;
      this.convs.forEach((conv, i) => {
        h = conv.forward(o, h);
        if (i < this.convs.length - 1) h = o.silu(h);
      });
      return h;
    });
  }
}

/**
 * cldm `ControlNet`: hint encoder, a trainable copy of the UNet encoder and 13 zero convolutions. Parameter
 * names are those under `control_model.` in the original checkpoint.
 */
export class ControlNetModel implements ControlNetHead {
  /** Declared parameters and their loaded values. */
  readonly params = new ParamStore();
  private readonly encoder: UNetEncoder;
  private readonly hintEncoder: HintEncoder;
  private readonly zeroConvs: Conv2d[];
  private readonly middleOut: Conv2d;

  constructor(readonly config: ControlNetConfig) {
    this.encoder = buildUNetEncoder(this.params, config);
    this.hintEncoder = new HintEncoder(this.params, config.hint_channels, config.model_channels);
    this.zeroConvs = this.encoder.inputChannels.map(
      (ch, i) => new Conv2d(this.params, `zero_convs.${i}.0`, ch, ch, 1),
    );
    this.middleOut = new Conv2d(
      this.params,
      'middle_block_out.0',
      this.encoder.middleChannels,
      this.encoder.middleChannels,
      1,
    );
  }

  get controlCount(): number {
    return this.encoder.inputBlocks.length + 1;
  }

  /**
   * The hint encoder on a control image [B, 8h, 8w, hint_channels] in [0, 1]. It does not depend on the
   * timestep: compute it once per request and pass it to every {@link forward}.
   */
  encodeHint(hint: tf.Tensor4D): tf.Tensor4D {
    return this.buildHint(tfOps, hint) as tf.Tensor4D;
  }

  buildHint<T>(o: Ops<T>, hint: T): T {
    return this.hintEncoder.encode(o, hint);
  }

  /** The 13 unscaled residuals for latent x [B, h, w, C], given the encoded hint. */
  forward(
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ): tf.Tensor4D[] {
    return tf.tidy(
      () =>
        this.build(
          tfOps,
          x,
          timestepEmbedding(timesteps, this.config.model_channels),
          context,
          encodedHint,
        ) as tf.Tensor4D[],
    );
  }

  build<T>(o: Ops<T>, x: T, sinusoids: T, context: T, encodedHint: T): T[] {
    return o.scope(() => {
      const emb = this.encoder.timeEmbedding.forward(o, sinusoids);
      const outs: T[] = [];
      let h = x;
      this.encoder.inputBlocks.forEach((block, k) => {
        h = block.forward(o, h, emb, context);
        if (k === 0) h = o.add(h, encodedHint);
        outs.push(this.zeroConvs[k]!.forward(o, h));
      });
      h = this.encoder.middleBlock.forward(o, h, emb, context);
      outs.push(this.middleOut.forward(o, h));
      return outs;
    });
  }

  /** Frees the weights. */
  dispose(): void {
    this.params.dispose();
  }
}
