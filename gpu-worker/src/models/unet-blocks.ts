import * as tf from '@tensorflow/tfjs';
import { attentionHeads, type UNetConfig } from './config.ts';
import {
  Conv2d,
  GroupNorm,
  gelu,
  LayerNorm,
  Linear,
  scaledDotProductAttention,
  silu,
  upsampleNearest2x,
} from './layers.ts';
import type { ParamStore } from './params.ts';

/** A block of a TimestepEmbedSequential: gets the feature map, the time embedding and the text context. */
export interface UNetBlock {
  forward(x: tf.Tensor4D, emb: tf.Tensor2D, context: tf.Tensor3D): tf.Tensor4D;
}

/**
 * Sinusoidal timestep embedding [cos, sin] as ldm's `timestep_embedding`, rounding every intermediate to
 * float32 the way PyTorch computes it, so the embedding matches the original bit for bit in most lanes.
 */
export function timestepEmbedding(timesteps: readonly number[], dim: number): tf.Tensor2D {
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const negLog = f(-Math.log(10000));
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = f(Math.exp(f(f(negLog * i) / half)));
  const out = new Float32Array(timesteps.length * dim);
  timesteps.forEach((t, b) => {
    for (let i = 0; i < half; i++) {
      const arg = f(f(t) * freqs[i]!);
      out[b * dim + i] = Math.cos(arg);
      out[b * dim + half + i] = Math.sin(arg);
    }
  });
  return tf.tensor2d(out, [timesteps.length, dim]);
}

/** time_embed: Linear(mc -> 4mc), SiLU, Linear(4mc -> 4mc). */
export class TimeEmbedding {
  private readonly linear1: Linear;
  private readonly linear2: Linear;
  constructor(
    params: ParamStore,
    private readonly modelChannels: number,
  ) {
    this.linear1 = new Linear(params, 'time_embed.0', modelChannels, modelChannels * 4);
    this.linear2 = new Linear(params, 'time_embed.2', modelChannels * 4, modelChannels * 4);
  }

  forward(timesteps: readonly number[]): tf.Tensor2D {
    return tf.tidy(() =>
      this.linear2.forward(silu(this.linear1.forward(timestepEmbedding(timesteps, this.modelChannels)))),
    );
  }
}

/** ResBlock without scale-shift norm: GN-SiLU-conv, + emb projection, GN-SiLU-conv, plus skip. */
export class ResBlock implements UNetBlock {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly embProjection: Linear;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly skip: Conv2d | undefined;
  constructor(params: ParamStore, name: string, channels: number, embChannels: number, outChannels: number) {
    this.norm1 = new GroupNorm(params, `${name}.in_layers.0`, channels, 1e-5);
    this.conv1 = new Conv2d(params, `${name}.in_layers.2`, channels, outChannels, 3);
    this.embProjection = new Linear(params, `${name}.emb_layers.1`, embChannels, outChannels);
    this.norm2 = new GroupNorm(params, `${name}.out_layers.0`, outChannels, 1e-5);
    this.conv2 = new Conv2d(params, `${name}.out_layers.3`, outChannels, outChannels, 3);
    this.skip =
      channels === outChannels
        ? undefined
        : new Conv2d(params, `${name}.skip_connection`, channels, outChannels, 1);
  }

  forward(x: tf.Tensor4D, emb: tf.Tensor2D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = this.conv1.forward(silu(this.norm1.forward(x)));
      const embOut = this.embProjection.forward(silu(emb));
      h = h.add(embOut.reshape([embOut.shape[0], 1, 1, embOut.shape[1]]));
      h = this.conv2.forward(silu(this.norm2.forward(h)));
      return (this.skip ? this.skip.forward(x) : x).add(h);
    });
  }
}

/** ldm CrossAttention: bias-free q/k/v, to_out with bias, scale d_head^-0.5. */
class CrossAttention {
  private readonly toQ: Linear;
  private readonly toK: Linear;
  private readonly toV: Linear;
  private readonly toOut: Linear;
  constructor(
    params: ParamStore,
    name: string,
    queryDim: number,
    contextDim: number,
    private readonly heads: number,
    private readonly headDim: number,
  ) {
    const inner = heads * headDim;
    this.toQ = new Linear(params, `${name}.to_q`, queryDim, inner, false);
    this.toK = new Linear(params, `${name}.to_k`, contextDim, inner, false);
    this.toV = new Linear(params, `${name}.to_v`, contextDim, inner, false);
    this.toOut = new Linear(params, `${name}.to_out.0`, inner, queryDim);
  }

  private splitHeads(x: tf.Tensor3D): tf.Tensor3D {
    const [b, n] = x.shape;
    return x
      .reshape([b, n, this.heads, this.headDim])
      .transpose([0, 2, 1, 3])
      .reshape([b * this.heads, n, this.headDim]);
  }

  forward(x: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, n] = x.shape;
      const q = this.splitHeads(this.toQ.forward(x));
      const k = this.splitHeads(this.toK.forward(context));
      const v = this.splitHeads(this.toV.forward(context));
      const out = scaledDotProductAttention(q, k, v, this.headDim ** -0.5)
        .reshape([b, this.heads, n, this.headDim])
        .transpose([0, 2, 1, 3])
        .reshape([b, n, this.heads * this.headDim]) as tf.Tensor3D;
      return this.toOut.forward(out);
    });
  }
}

/** BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, each pre-LN with residual. */
class TransformerBlock {
  private readonly attn1: CrossAttention;
  private readonly attn2: CrossAttention;
  private readonly norm1: LayerNorm;
  private readonly norm2: LayerNorm;
  private readonly norm3: LayerNorm;
  private readonly geglu: Linear;
  private readonly ffOut: Linear;
  constructor(
    params: ParamStore,
    name: string,
    dim: number,
    heads: number,
    headDim: number,
    contextDim: number,
  ) {
    this.attn1 = new CrossAttention(params, `${name}.attn1`, dim, dim, heads, headDim);
    this.geglu = new Linear(params, `${name}.ff.net.0.proj`, dim, dim * 8);
    this.ffOut = new Linear(params, `${name}.ff.net.2`, dim * 4, dim);
    this.attn2 = new CrossAttention(params, `${name}.attn2`, dim, contextDim, heads, headDim);
    this.norm1 = new LayerNorm(params, `${name}.norm1`, dim);
    this.norm2 = new LayerNorm(params, `${name}.norm2`, dim);
    this.norm3 = new LayerNorm(params, `${name}.norm3`, dim);
  }

  forward(x: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      let h = x;
      const normed1 = this.norm1.forward(h);
      h = this.attn1.forward(normed1, normed1).add(h);
      h = this.attn2.forward(this.norm2.forward(h), context).add(h);
      const projected = this.geglu.forward(this.norm3.forward(h));
      const [value, gate] = tf.split(projected, 2, -1) as [tf.Tensor3D, tf.Tensor3D];
      return this.ffOut.forward(value.mul(gelu(gate)) as tf.Tensor3D).add(h);
    });
  }
}

/** SpatialTransformer: GN(eps 1e-6), proj_in, transformer blocks over HxW tokens, proj_out, residual. */
export class SpatialTransformer implements UNetBlock {
  private readonly norm: GroupNorm;
  private readonly projIn: Conv2d | Linear;
  private readonly projOut: Conv2d | Linear;
  private readonly blocks: TransformerBlock[] = [];
  constructor(
    params: ParamStore,
    name: string,
    private readonly channels: number,
    heads: number,
    headDim: number,
    depth: number,
    contextDim: number,
    private readonly linearProjection: boolean,
  ) {
    const inner = heads * headDim;
    this.norm = new GroupNorm(params, `${name}.norm`, channels, 1e-6);
    this.projIn = linearProjection
      ? new Linear(params, `${name}.proj_in`, channels, inner)
      : new Conv2d(params, `${name}.proj_in`, channels, inner, 1);
    for (let d = 0; d < depth; d++) {
      this.blocks.push(
        new TransformerBlock(params, `${name}.transformer_blocks.${d}`, inner, heads, headDim, contextDim),
      );
    }
    this.projOut = linearProjection
      ? new Linear(params, `${name}.proj_out`, inner, channels)
      : new Conv2d(params, `${name}.proj_out`, inner, channels, 1);
  }

  forward(x: tf.Tensor4D, _emb: tf.Tensor2D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const normed = this.norm.forward(x);
      let tokens: tf.Tensor3D;
      if (this.linearProjection) {
        tokens = (this.projIn as Linear).forward(normed.reshape([b, h * w, this.channels]) as tf.Tensor3D);
      } else {
        const projected = (this.projIn as Conv2d).forward(normed);
        tokens = projected.reshape([b, h * w, projected.shape[3]]);
      }
      for (const block of this.blocks) tokens = block.forward(tokens, context);
      let out: tf.Tensor4D;
      if (this.linearProjection) {
        out = (this.projOut as Linear).forward(tokens).reshape([b, h, w, this.channels]);
      } else {
        out = (this.projOut as Conv2d).forward(tokens.reshape([b, h, w, tokens.shape[2]]));
      }
      return out.add(x);
    });
  }
}

/** Downsample: conv3x3 stride 2 with symmetric padding 1 (`op`). */
export class Downsample implements UNetBlock {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.op`, channels, channels, 3, 2, 1);
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return this.conv.forward(x);
  }
}

/** Upsample: nearest x2 then conv3x3 (`conv`). */
export class Upsample implements UNetBlock {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.conv`, channels, channels, 3);
  }
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => this.conv.forward(upsampleNearest2x(x)));
  }
}

/** A TimestepEmbedSequential: runs its blocks in order. */
export class BlockSequence implements UNetBlock {
  constructor(readonly blocks: UNetBlock[]) {}
  forward(x: tf.Tensor4D, emb: tf.Tensor2D, context: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      let h = x;
      for (const block of this.blocks) h = block.forward(h, emb, context);
      return h;
    });
  }
}

/** The encoder half shared by the UNet and the ControlNet's trainable copy. */
export interface UNetEncoder {
  timeEmbedding: TimeEmbedding;
  inputBlocks: BlockSequence[];
  /** Output channels of each input block (the skip connections). */
  inputChannels: number[];
  middleBlock: BlockSequence;
  middleChannels: number;
}

function transformer(
  params: ParamStore,
  name: string,
  config: Omit<UNetConfig, 'out_channels'>,
  channels: number,
): SpatialTransformer {
  const [heads, headDim] = attentionHeads(config, channels);
  return new SpatialTransformer(
    params,
    name,
    channels,
    heads,
    headDim,
    config.transformer_depth,
    config.context_dim,
    config.use_linear_in_transformer,
  );
}

/** Builds time_embed, input_blocks and middle_block exactly as ldm's UNetModel.__init__ numbers them. */
export function buildUNetEncoder(params: ParamStore, config: Omit<UNetConfig, 'out_channels'>): UNetEncoder {
  const mc = config.model_channels;
  const embChannels = mc * 4;
  const timeEmbedding = new TimeEmbedding(params, mc);
  const inputBlocks: BlockSequence[] = [
    new BlockSequence([new Conv2d(params, 'input_blocks.0.0', config.in_channels, mc, 3)]),
  ];
  const inputChannels = [mc];
  let ch = mc;
  let ds = 1;
  config.channel_mult.forEach((mult, level) => {
    for (let r = 0; r < config.num_res_blocks; r++) {
      const name = `input_blocks.${inputBlocks.length}`;
      const blocks: UNetBlock[] = [new ResBlock(params, `${name}.0`, ch, embChannels, mult * mc)];
      ch = mult * mc;
      if (config.attention_resolutions.includes(ds))
        blocks.push(transformer(params, `${name}.1`, config, ch));
      inputBlocks.push(new BlockSequence(blocks));
      inputChannels.push(ch);
    }
    if (level !== config.channel_mult.length - 1) {
      inputBlocks.push(
        new BlockSequence([new Downsample(params, `input_blocks.${inputBlocks.length}.0`, ch)]),
      );
      inputChannels.push(ch);
      ds *= 2;
    }
  });
  const middleBlock = new BlockSequence([
    new ResBlock(params, 'middle_block.0', ch, embChannels, ch),
    transformer(params, 'middle_block.1', config, ch),
    new ResBlock(params, 'middle_block.2', ch, embChannels, ch),
  ]);
  return { timeEmbedding, inputBlocks, inputChannels, middleBlock, middleChannels: ch };
}

/** Builds output_blocks as ldm numbers them; returns the blocks and the final channel count. */
export function buildUNetDecoder(
  params: ParamStore,
  config: UNetConfig,
  encoder: UNetEncoder,
): { outputBlocks: BlockSequence[]; channels: number } {
  const mc = config.model_channels;
  const skips = [...encoder.inputChannels];
  const outputBlocks: BlockSequence[] = [];
  let ch = encoder.middleChannels;
  let ds = 2 ** (config.channel_mult.length - 1);
  for (let level = config.channel_mult.length - 1; level >= 0; level--) {
    const mult = config.channel_mult[level]!;
    for (let i = 0; i <= config.num_res_blocks; i++) {
      const name = `output_blocks.${outputBlocks.length}`;
      const skip = skips.pop()!;
      const blocks: UNetBlock[] = [new ResBlock(params, `${name}.0`, ch + skip, mc * 4, mc * mult)];
      ch = mc * mult;
      if (config.attention_resolutions.includes(ds))
        blocks.push(transformer(params, `${name}.1`, config, ch));
      if (level > 0 && i === config.num_res_blocks) {
        blocks.push(new Upsample(params, `${name}.${blocks.length}`, ch));
        ds /= 2;
      }
      outputBlocks.push(new BlockSequence(blocks));
    }
  }
  return { outputBlocks, channels: ch };
}
