import type { Ops } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';
import { Conv, FoldedBatchNorm, LayerNorm, Linear } from './layers.ts';

/** UniFormer-S as upernet_global_small configures it: embed dims, blocks per stage, head dim 64, MLP ratio 4. */
const EMBED = [64, 128, 320, 512] as const;
const DEPTHS = [3, 4, 8, 3] as const;
const HEAD_DIM = 64;
const MLP_RATIO = 4;
/** UniFormer's norm_layer: partial(nn.LayerNorm, eps=1e-6) (stage norms, SABlock norms). */
const LN_EPS = 1e-6;
/** PatchEmbed builds a plain nn.LayerNorm (eps 1e-5). */
const PATCH_LN_EPS = 1e-5;

/** PatchEmbed: conv with kernel = stride = patch (floor of odd sizes), then LayerNorm over channels. */
class PatchEmbed {
  private readonly proj: Conv;
  private readonly norm: LayerNorm;
  constructor(params: ParamStore, name: string, inChannels: number, dim: number, patch: number) {
    this.norm = new LayerNorm(params, `${name}.norm`, dim, PATCH_LN_EPS);
    this.proj = new Conv(params, `${name}.proj`, inChannels, dim, patch, { stride: patch });
  }

  forward<T>(o: Ops<T>, x: T): T {
    return this.norm.forwardImage(o, this.proj.forward(o, x));
  }
}

/** CBlock (stages 1-2): depthwise position conv, BN -> 1x1 -> depthwise 5x5 -> 1x1 "local MHRA", BN -> conv MLP. */
class CBlock {
  private readonly posEmbed: Conv;
  readonly norm1: FoldedBatchNorm;
  private readonly conv1: Conv;
  private readonly attn: Conv;
  private readonly conv2: Conv;
  readonly norm2: FoldedBatchNorm;
  private readonly fc1: Conv;
  private readonly fc2: Conv;
  constructor(params: ParamStore, name: string, dim: number) {
    this.posEmbed = new Conv(params, `${name}.pos_embed`, dim, dim, 3, { pad: 1, groups: dim });
    this.norm1 = new FoldedBatchNorm(params, `${name}.norm1`, dim);
    this.conv1 = new Conv(params, `${name}.conv1`, dim, dim, 1);
    this.conv2 = new Conv(params, `${name}.conv2`, dim, dim, 1);
    this.attn = new Conv(params, `${name}.attn`, dim, dim, 5, { pad: 2, groups: dim });
    this.norm2 = new FoldedBatchNorm(params, `${name}.norm2`, dim);
    this.fc1 = new Conv(params, `${name}.mlp.fc1`, dim, dim * MLP_RATIO, 1);
    this.fc2 = new Conv(params, `${name}.mlp.fc2`, dim * MLP_RATIO, dim, 1);
  }

  forward<T>(o: Ops<T>, input: T): T {
    let x = o.add(input, this.posEmbed.forward(o, input));
    const local = this.conv1.forward(o, this.norm1.forward(o, x));
    x = o.add(x, this.conv2.forward(o, this.attn.forward(o, local)));
    const hidden = o.gelu(this.fc1.forward(o, this.norm2.forward(o, x)));
    return o.add(x, this.fc2.forward(o, hidden));
  }
}

/** SABlock (stages 3-4, global windows): depthwise position conv, then a pre-norm transformer block on tokens. */
class SABlock {
  private readonly posEmbed: Conv;
  private readonly norm1: LayerNorm;
  private readonly qkv: Linear;
  private readonly proj: Linear;
  private readonly norm2: LayerNorm;
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  private readonly heads: number;
  constructor(params: ParamStore, name: string, dim: number) {
    this.heads = dim / HEAD_DIM;
    this.posEmbed = new Conv(params, `${name}.pos_embed`, dim, dim, 3, { pad: 1, groups: dim });
    this.norm1 = new LayerNorm(params, `${name}.norm1`, dim, LN_EPS);
    this.qkv = new Linear(params, `${name}.attn.qkv`, dim, dim * 3);
    this.proj = new Linear(params, `${name}.attn.proj`, dim, dim);
    this.norm2 = new LayerNorm(params, `${name}.norm2`, dim, LN_EPS);
    this.fc1 = new Linear(params, `${name}.mlp.fc1`, dim, dim * MLP_RATIO);
    this.fc2 = new Linear(params, `${name}.mlp.fc2`, dim * MLP_RATIO, dim);
  }

  forward<T>(o: Ops<T>, input: T): T {
    const x = o.add(input, this.posEmbed.forward(o, input));
    const [, h, w] = o.imageShape(x);
    let t = o.toTokens(x);
    // Attention: qkv reshaped (B, N, 3, heads, head_dim), so q, k, v are consecutive thirds, heads contiguous.
    const [q, k, v] = this.qkv.forwardSplit(o, this.norm1.forward(o, t), 3) as [T, T, T];
    t = o.add(t, this.proj.forward(o, o.multiHeadAttention(q, k, v, this.heads, HEAD_DIM ** -0.5)));
    t = o.add(t, this.fc2.forward(o, o.gelu(this.fc1.forward(o, this.norm2.forward(o, t)))));
    return o.fromTokens(t, h, w);
  }
}

/** The UniFormer backbone (mmseg `backbone.*`): four stages, each output LayerNorm-ed over channels. */
export class UniFormerBackbone {
  private readonly embeds: PatchEmbed[];
  private readonly stages: (CBlock | SABlock)[][];
  private readonly norms: LayerNorm[];
  constructor(params: ParamStore, prefix: string) {
    this.embeds = EMBED.map(
      (dim, i) =>
        new PatchEmbed(
          params,
          `${prefix}patch_embed${i + 1}`,
          i === 0 ? 3 : EMBED[i - 1]!,
          dim,
          i === 0 ? 4 : 2,
        ),
    );
    this.stages = EMBED.map((dim, i) =>
      Array.from({ length: DEPTHS[i]! }, (_, j) => {
        const name = `${prefix}blocks${i + 1}.${j}`;
        return i < 2 ? new CBlock(params, name, dim) : new SABlock(params, name, dim);
      }),
    );
    this.norms = EMBED.map((dim, i) => new LayerNorm(params, `${prefix}norm${i + 1}`, dim, LN_EPS));
  }

  /** Channel counts of the four outputs (strides 4, 8, 16, 32). */
  static readonly channels = EMBED;

  /** The four stage outputs (UniFormer.forward_features). */
  forward<T>(o: Ops<T>, image: T): T[] {
    const out: T[] = [];
    let x = image;
    for (const [i, embed] of this.embeds.entries()) {
      x = embed.forward(o, x);
      for (const block of this.stages[i]!) x = block.forward(o, x);
      out.push(this.norms[i]!.forwardImage(o, x));
    }
    return out;
  }

  /** Batch norms to fold once the weights are loaded. */
  batchNorms(): FoldedBatchNorm[] {
    return this.stages.flat().flatMap((b) => (b instanceof CBlock ? [b.norm1, b.norm2] : []));
  }
}
