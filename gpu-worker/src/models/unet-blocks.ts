import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { attentionHeads, type UNetConfig } from './config.ts';
import { Conv2d, GroupNorm, LayerNorm, Linear } from './layers.ts';
import type { ParamStore } from './params.ts';

/** A block of a TimestepEmbedSequential: gets the feature map, the time embedding and the text context. */
export interface UNetBlock {
  forward<T>(o: Ops<T>, x: T, emb: T, context: T): T;
}

/**
 * Sinusoidal timestep embedding [cos, sin] as ldm's `timestep_embedding`, rounding every intermediate to
 * float32 the way PyTorch computes it, so the embedding matches the original bit for bit in most lanes.
 */
export function timestepEmbedding(timesteps: readonly number[], dim: number): tf.Tensor2D {
  return tf.tensor2d(timestepSinusoids(timesteps, dim), [timesteps.length, dim]);
}

/** The values of {@link timestepEmbedding}, row-major [timesteps.length, dim]. */
export function timestepSinusoids(timesteps: readonly number[], dim: number): Float32Array {
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
  return out;
}

/** time_embed: Linear(mc -> 4mc), SiLU, Linear(4mc -> 4mc), on the sinusoids of {@link timestepEmbedding}. */
export class TimeEmbedding {
  private readonly linear1: Linear;
  private readonly linear2: Linear;
  constructor(
    params: ParamStore,
    readonly modelChannels: number,
  ) {
    this.linear1 = new Linear(params, 'time_embed.0', modelChannels, modelChannels * 4);
    this.linear2 = new Linear(params, 'time_embed.2', modelChannels * 4, modelChannels * 4);
  }

  forward<T>(o: Ops<T>, sinusoids: T): T {
    return this.linear2.forward(o, o.silu(this.linear1.forward(o, sinusoids)));
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

  forward<T>(o: Ops<T>, x: T, emb: T): T {
    return o.scope(() => {
      let h = this.conv1.forward(o, o.silu(this.norm1.forward(o, x)));
      h = o.addPerChannel(h, this.embProjection.forward(o, o.silu(emb)));
      h = this.conv2.forward(o, o.silu(this.norm2.forward(o, h)));
      return o.add(this.skip ? this.skip.forward(o, x) : x, h);
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

  forward<T>(o: Ops<T>, x: T, context: T): T {
    return o.scope(() => {
      const q = this.toQ.forward(o, x);
      const k = this.toK.forward(o, context);
      const v = this.toV.forward(o, context);
      return this.toOut.forward(o, o.multiHeadAttention(q, k, v, this.heads, this.headDim ** -0.5));
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

  forward<T>(o: Ops<T>, x: T, context: T): T {
    return o.scope(() => {
      let h = x;
      const normed1 = this.norm1.forward(o, h);
      h = o.add(this.attn1.forward(o, normed1, normed1), h);
      h = o.add(this.attn2.forward(o, this.norm2.forward(o, h), context), h);
      const [value, gate] = this.geglu.forwardSplit(o, this.norm3.forward(o, h), 2) as [T, T];
      return o.add(this.ffOut.forward(o, o.mul(value, o.gelu(gate))), h);
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
    channels: number,
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

  forward<T>(o: Ops<T>, x: T, _emb: T, context: T): T {
    return o.scope(() => {
      const [, h, w] = o.imageShape(x);
      const normed = this.norm.forward(o, x);
      let tokens = this.linearProjection
        ? this.projIn.forward(o, o.toTokens(normed))
        : o.toTokens(this.projIn.forward(o, normed));
      for (const block of this.blocks) tokens = block.forward(o, tokens, context);
      const out = this.linearProjection
        ? o.fromTokens(this.projOut.forward(o, tokens), h, w)
        : this.projOut.forward(o, o.fromTokens(tokens, h, w));
      return o.add(out, x);
    });
  }
}

/** Downsample: conv3x3 stride 2 with symmetric padding 1 (`op`). */
export class Downsample implements UNetBlock {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.op`, channels, channels, 3, 2, 1);
  }
  forward<T>(o: Ops<T>, x: T): T {
    return this.conv.forward(o, x);
  }
}

/** Upsample: nearest x2 then conv3x3 (`conv`). */
export class Upsample implements UNetBlock {
  private readonly conv: Conv2d;
  constructor(params: ParamStore, name: string, channels: number) {
    this.conv = new Conv2d(params, `${name}.conv`, channels, channels, 3);
  }
  forward<T>(o: Ops<T>, x: T): T {
    return o.scope(() => this.conv.forward(o, o.upsampleNearest2x(x)));
  }
}

/** A TimestepEmbedSequential: runs its blocks in order. */
export class BlockSequence implements UNetBlock {
  constructor(readonly blocks: UNetBlock[]) {}
  forward<T>(o: Ops<T>, x: T, emb: T, context: T): T {
    return o.scope(() => {
      let h = x;
      for (const block of this.blocks) h = block.forward(o, h, emb, context);
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
