import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { tfOps } from '../engine/tf-ops.ts';
import type { VaeConfig } from './config.ts';
import { Conv2d, GroupNorm, type Layer4D } from './layers.ts';
import { ParamStore } from './params.ts';

/** ldm ResnetBlock without a time embedding: GN(eps 1e-6)-swish-conv twice, 1x1 `nin_shortcut` skip. */
class VaeResBlock implements Layer4D {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly shortcut: Conv2d | undefined;
  constructor(params: ParamStore, name: string, channels: number, outChannels: number) {
    this.norm1 = new GroupNorm(params, `${name}.norm1`, channels, 1e-6);
    this.conv1 = new Conv2d(params, `${name}.conv1`, channels, outChannels, 3);
    this.norm2 = new GroupNorm(params, `${name}.norm2`, outChannels, 1e-6);
    this.conv2 = new Conv2d(params, `${name}.conv2`, outChannels, outChannels, 3);
    this.shortcut =
      channels === outChannels
        ? undefined
        : new Conv2d(params, `${name}.nin_shortcut`, channels, outChannels, 1);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.scope(() => {
      const h1 = this.conv1.forward(o, o.silu(this.norm1.forward(o, x)));
      const h = this.conv2.forward(o, o.silu(this.norm2.forward(o, h1)));
      return o.add(this.shortcut ? this.shortcut.forward(o, x) : x, h);
    });
  }
}

/** ldm AttnBlock: single head over HxW, 1x1 conv q/k/v/proj_out, scale C^-0.5. */
class VaeAttention implements Layer4D {
  private readonly norm: GroupNorm;
  private readonly q: Conv2d;
  private readonly k: Conv2d;
  private readonly v: Conv2d;
  private readonly proj: Conv2d;
  constructor(
    params: ParamStore,
    name: string,
    private readonly channels: number,
  ) {
    this.norm = new GroupNorm(params, `${name}.norm`, channels, 1e-6);
    this.q = new Conv2d(params, `${name}.q`, channels, channels, 1);
    this.k = new Conv2d(params, `${name}.k`, channels, channels, 1);
    this.v = new Conv2d(params, `${name}.v`, channels, channels, 1);
    this.proj = new Conv2d(params, `${name}.proj_out`, channels, channels, 1);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.scope(() => {
      const [, h, w] = o.imageShape(x);
      const normed = this.norm.forward(o, x);
      const tokens = (conv: Conv2d) => o.toTokens(conv.forward(o, normed));
      const attended = o.attention(tokens(this.q), tokens(this.k), tokens(this.v), this.channels ** -0.5);
      return o.add(this.proj.forward(o, o.fromTokens(attended, h, w)), x);
    });
  }
}

/** Encoder downsampling: pad (0,1,0,1) then conv3x3 stride 2 without padding. */
class VaeDownsample implements Layer4D {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.conv`, channels, channels, 3, 2, 0);
  }
  forward<T>(o: Ops<T>, x: T): T {
    return o.scope(() => this.conv.forward(o, o.padBottomRight(x, 1)));
  }
}

class VaeUpsample implements Layer4D {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.conv`, channels, channels, 3);
  }
  forward<T>(o: Ops<T>, x: T): T {
    return o.scope(() => this.conv.forward(o, o.upsampleNearest2x(x)));
  }
}

function runAll<T>(o: Ops<T>, layers: Layer4D[], x: T): T {
  return o.scope(() => layers.reduce((h, layer) => layer.forward(o, h), x));
}

/** A layer from a function (the output norm + SiLU). */
function layer(fn: <T>(o: Ops<T>, x: T) => T): Layer4D {
  return { forward: fn };
}

/**
 * The AutoencoderKL decoder with `post_quant_conv` (parameter names under `first_stage_model.` in the
 * original checkpoint, e.g. `decoder.up.3.block.0.conv1.weight`).
 */
export class VaeDecoder {
  /** Declared parameters and their loaded values. */
  readonly params = new ParamStore();
  private readonly layers: Layer4D[] = [];

  constructor(readonly config: VaeConfig) {
    const p = this.params;
    const levels = config.ch_mult.length;
    let ch = config.ch * config.ch_mult[levels - 1]!;
    this.layers.push(new Conv2d(p, 'post_quant_conv', config.embed_dim, config.z_channels, 1));
    this.layers.push(new Conv2d(p, 'decoder.conv_in', config.z_channels, ch, 3));
    this.layers.push(new VaeResBlock(p, 'decoder.mid.block_1', ch, ch));
    this.layers.push(new VaeAttention(p, 'decoder.mid.attn_1', ch));
    this.layers.push(new VaeResBlock(p, 'decoder.mid.block_2', ch, ch));
    for (let level = levels - 1; level >= 0; level--) {
      const out = config.ch * config.ch_mult[level]!;
      for (let i = 0; i <= config.num_res_blocks; i++) {
        this.layers.push(new VaeResBlock(p, `decoder.up.${level}.block.${i}`, ch, out));
        ch = out;
      }
      if (level !== 0) this.layers.push(new VaeUpsample(p, `decoder.up.${level}.upsample`, ch));
    }
    const normOut = new GroupNorm(p, 'decoder.norm_out', ch, 1e-6);
    this.layers.push(layer((o, x) => o.silu(normOut.forward(o, x))));
    this.layers.push(new Conv2d(p, 'decoder.conv_out', ch, config.out_ch, 3));
  }

  /** Decodes latents [B, h, w, 4] already divided by the scale factor; returns images in about [-1, 1]. */
  forward(z: tf.Tensor4D): tf.Tensor4D {
    return this.build(tfOps, z) as tf.Tensor4D;
  }

  /** {@link forward} on any backend. */
  build<T>(o: Ops<T>, z: T): T {
    return runAll(o, this.layers, z);
  }

  /** Decodes sampled latents (multiplied by the scale factor, as the sampler returns them). */
  decodeLatents(latents: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.forward(latents.div(this.config.scale_factor)));
  }

  /** {@link decodeLatents} on any backend. */
  buildDecodeLatents<T>(o: Ops<T>, latents: T): T {
    return o.scope(() => this.build(o, o.mulScalar(latents, 1 / this.config.scale_factor)));
  }

  /** Frees the weights. */
  dispose(): void {
    this.params.dispose();
  }
}

/** The AutoencoderKL encoder with `quant_conv` (names under `first_stage_model.`). */
export class VaeEncoder {
  /** Declared parameters and their loaded values. */
  readonly params = new ParamStore();
  private readonly layers: Layer4D[] = [];

  constructor(readonly config: VaeConfig) {
    const p = this.params;
    const levels = config.ch_mult.length;
    let ch = config.ch;
    this.layers.push(new Conv2d(p, 'encoder.conv_in', config.in_channels, ch, 3));
    for (let level = 0; level < levels; level++) {
      const out = config.ch * config.ch_mult[level]!;
      for (let i = 0; i < config.num_res_blocks; i++) {
        this.layers.push(new VaeResBlock(p, `encoder.down.${level}.block.${i}`, ch, out));
        ch = out;
      }
      if (level !== levels - 1)
        this.layers.push(new VaeDownsample(p, `encoder.down.${level}.downsample`, ch));
    }
    this.layers.push(new VaeResBlock(p, 'encoder.mid.block_1', ch, ch));
    this.layers.push(new VaeAttention(p, 'encoder.mid.attn_1', ch));
    this.layers.push(new VaeResBlock(p, 'encoder.mid.block_2', ch, ch));
    const normOut = new GroupNorm(p, 'encoder.norm_out', ch, 1e-6);
    this.layers.push(layer((o, x) => o.silu(normOut.forward(o, x))));
    const zOut = config.double_z ? 2 * config.z_channels : config.z_channels;
    this.layers.push(new Conv2d(p, 'encoder.conv_out', ch, zOut, 3));
    this.layers.push(new Conv2d(p, 'quant_conv', zOut, 2 * config.embed_dim, 1));
  }

  /** Gaussian moments [B, h, w, 2*embed_dim] (mean then log-variance) of images in [-1, 1]. */
  forward(images: tf.Tensor4D): tf.Tensor4D {
    return this.build(tfOps, images) as tf.Tensor4D;
  }

  /** {@link forward} on any backend. */
  build<T>(o: Ops<T>, images: T): T {
    return runAll(o, this.layers, images);
  }

  /** The scaled latent mean (`scale_factor * mode()`), what img2img-style pipelines start from. */
  encodeMean(images: tf.Tensor4D): tf.Tensor4D {
    return this.buildEncodeMean(tfOps, images) as tf.Tensor4D;
  }

  /** {@link encodeMean} on any backend. */
  buildEncodeMean<T>(o: Ops<T>, images: T): T {
    return o.scope(() =>
      o.mulScalar(o.sliceChannels(this.build(o, images), 0, this.config.embed_dim), this.config.scale_factor),
    );
  }

  /** Frees the weights. */
  dispose(): void {
    this.params.dispose();
  }
}
