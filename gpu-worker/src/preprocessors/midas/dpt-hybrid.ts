import * as tf from '@tensorflow/tfjs';
import { interpolationMatrix } from '../../engine/interpolation.ts';
import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { conv, declareConv, declareDepthHead, declareFusion, depthHead, fusion } from './layers.ts';

/** The DPT-Hybrid checkpoint as lllyasviel/Annotators hosts it (MiDaS v3.0 release name). */
export const DPT_HYBRID_FILE = 'dpt_hybrid-midas-501f0c75.pt';

const VIT = 'pretrained.model.';
const BACKBONE = `${VIT}patch_embed.backbone.`;
/** ViT-B/16: width, depth, heads. */
const DIM = 768;
const DEPTH = 12;
const HEADS = 12;
/** timm's hybrid ResNetV2 (vit_base_resnet50_384): blocks per stage, output channels, strides. */
const STAGES = [
  { blocks: 3, out: 256, stride: 1 },
  { blocks: 4, out: 512, stride: 2 },
  { blocks: 9, out: 1024, stride: 2 },
] as const;
/** Blocks whose outputs DPT reassembles (hooks [0, 1, 8, 11]: the first two are ResNet stages). */
const HOOK_BLOCKS = [8, 11] as const;
/** The position embedding's trained grid: 384 / 16. */
const POS_GRID = 24;
/** DPT's fusion width. */
const FEATURES = 256;
/** StdConv2dSame's eps in timm's hybrid backbone (`partial(StdConv2dSame, eps=1e-8)`). */
const STD_CONV_EPS = 1e-8;
/** GroupNormAct (32 groups, PyTorch's default eps) and the ViT's LayerNorm eps. */
const GN_GROUPS = 32;
const GN_EPS = 1e-5;
const LN_EPS = 1e-6;

/** Checkpoint keys the forward pass never reads: the classifier head and the final norm after the hooks. */
const UNUSED = [`${VIT}head.`, `${VIT}norm.`];

/** The checkpoint's own layout (DPTDepthModel.state_dict()), minus the unused ViT head and final norm. */
export const dptHybridKeys: KeyMapping = {
  fileKeys: (name) => [name],
  belongs: (key) => !UNUSED.some((prefix) => key.startsWith(prefix)),
};

/** timm's pad_same split for one axis: total = max((ceil(i / s) - 1) s + k - i, 0), the smaller half first. */
export function samePad(size: number, kernel: number, stride: number): [number, number] {
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + kernel - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * Weight standardisation of a StdConv2d kernel held HWIO [kh, kw, in, out]: per output channel, (w - mean) /
 * sqrt(var + eps) over its kh*kw*in values (biased variance), as timm's F.batch_norm(training=True) over the
 * kernel does on every forward. Folded once at load time.
 */
export function standardizeKernel(kernel: tf.Tensor, eps: number): tf.Tensor {
  const data = kernel.dataSync() as Float32Array;
  const out = kernel.shape[3]!;
  const count = data.length / out;
  const result = new Float32Array(data.length);
  for (let o = 0; o < out; o++) {
    let sum = 0;
    for (let i = o; i < data.length; i += out) sum += data[i]!;
    const mean = sum / count;
    let squares = 0;
    for (let i = o; i < data.length; i += out) squares += (data[i]! - mean) ** 2;
    const invStd = 1 / Math.sqrt(squares / count + eps);
    for (let i = o; i < data.length; i += out) result[i] = (data[i]! - mean) * invStd;
  }
  return tf.tensor(result, kernel.shape);
}

/**
 * vit.py's _resize_pos_embed on the weights: the [1, 1 + 24*24, dim] embedding's grid resized to (gh, gw) with
 * F.interpolate(mode="bilinear", align_corners=False), the class token's entry kept first. Plain data.
 */
export function resizePosEmbed(posEmbed: Float32Array, gh: number, gw: number, dim = DIM): Float32Array {
  const out = new Float32Array((1 + gh * gw) * dim);
  out.set(posEmbed.subarray(0, dim));
  const my = interpolationMatrix(POS_GRID, gh, 'bilinear', false);
  const mx = interpolationMatrix(POS_GRID, gw, 'bilinear', false);
  // Rows first (gh x 24 x dim), then columns.
  const rows = new Float64Array(gh * POS_GRID * dim);
  for (let y = 0; y < gh; y++)
    for (let sy = 0; sy < POS_GRID; sy++) {
      const wy = my[y * POS_GRID + sy]!;
      if (wy === 0) continue;
      for (let x = 0; x < POS_GRID; x++) {
        const src = dim * (1 + sy * POS_GRID + x);
        const dst = (y * POS_GRID + x) * dim;
        for (let c = 0; c < dim; c++) rows[dst + c]! += wy * posEmbed[src + c]!;
      }
    }
  for (let y = 0; y < gh; y++)
    for (let x = 0; x < gw; x++) {
      const dst = dim * (1 + y * gw + x);
      for (let sx = 0; sx < POS_GRID; sx++) {
        const wx = mx[x * POS_GRID + sx]!;
        if (wx === 0) continue;
        const src = (y * POS_GRID + sx) * dim;
        for (let c = 0; c < dim; c++) out[dst + c]! += wx * rows[src + c]!;
      }
    }
  return out;
}

/**
 * MiDaS v3 DPT-Hybrid (DPTDepthModel, backbone "vitb_rn50_384", readout "project", non_negative) as ControlNet
 * 1.1's MidasDetector runs it: input [1, H, W, 3] in [-1, 1] with H, W multiples of 32; output the raw inverse
 * depth [1, H, W, 1] (the model's [1, H, W] prediction).
 */
export class DptHybridNetwork implements Network {
  readonly kind = 'midas-dpt-hybrid';
  readonly params = new ParamStore();
  /** The StdConv2dSame kernels, standardised in place by {@link standardize}. */
  private readonly stdConvs: string[] = [];
  /** Per token-grid constants (resized position embedding, readout broadcast ones), built on first use. */
  private readonly gridConstants = new Map<string, { pos: tf.Tensor; ones: tf.Tensor }>();

  constructor() {
    const p = this.params;
    p.declare(`${VIT}cls_token`, [1, 1, DIM]);
    p.declare(`${VIT}pos_embed`, [1, 1 + POS_GRID * POS_GRID, DIM]);
    this.declareStd(`${BACKBONE}stem.conv`, 64, 3, 7);
    this.declareNorm(`${BACKBONE}stem.norm`, 64);
    let inChannels = 64;
    for (const [s, stage] of STAGES.entries()) {
      const mid = stage.out / 4;
      for (let b = 0; b < stage.blocks; b++) {
        const block = `${BACKBONE}stages.${s}.blocks.${b}.`;
        if (b === 0) {
          this.declareStd(`${block}downsample.conv`, stage.out, inChannels, 1);
          this.declareNorm(`${block}downsample.norm`, stage.out);
        }
        this.declareStd(`${block}conv1`, mid, b === 0 ? inChannels : stage.out, 1);
        this.declareNorm(`${block}norm1`, mid);
        this.declareStd(`${block}conv2`, mid, mid, 3);
        this.declareNorm(`${block}norm2`, mid);
        this.declareStd(`${block}conv3`, stage.out, mid, 1);
        this.declareNorm(`${block}norm3`, stage.out);
      }
      inChannels = stage.out;
    }
    declareConv(p, `${VIT}patch_embed.proj`, DIM, 1024, 1);
    for (let i = 0; i < DEPTH; i++) {
      const blk = `${VIT}blocks.${i}.`;
      this.declareNorm(`${blk}norm1`, DIM);
      this.declareLinear(`${blk}attn.qkv`, 3 * DIM, DIM);
      this.declareLinear(`${blk}attn.proj`, DIM, DIM);
      this.declareNorm(`${blk}norm2`, DIM);
      this.declareLinear(`${blk}mlp.fc1`, 4 * DIM, DIM);
      this.declareLinear(`${blk}mlp.fc2`, DIM, 4 * DIM);
    }
    for (const i of [3, 4]) {
      this.declareLinear(`pretrained.act_postprocess${i}.0.project.0`, DIM, 2 * DIM);
      declareConv(p, `pretrained.act_postprocess${i}.3`, DIM, DIM, 1);
    }
    declareConv(p, 'pretrained.act_postprocess4.4', DIM, DIM, 3);
    for (const [i, channels] of [256, 512, DIM, DIM].entries())
      declareConv(p, `scratch.layer${i + 1}_rn`, FEATURES, channels, 3, false);
    for (let i = 1; i <= 4; i++) declareFusion(p, `scratch.refinenet${i}`, FEATURES, FEATURES);
    declareDepthHead(p, FEATURES);
  }

  private declareStd(name: string, out: number, inp: number, k: number): void {
    declareConv(this.params, name, out, inp, k, false);
    this.stdConvs.push(`${name}.weight`);
  }

  private declareNorm(name: string, channels: number): void {
    this.params.declare(`${name}.weight`, [channels]);
    this.params.declare(`${name}.bias`, [channels]);
  }

  private declareLinear(name: string, out: number, inp: number): void {
    this.params.declare(`${name}.weight`, [out, inp]);
    this.params.declare(`${name}.bias`, [out]);
  }

  /** Replaces every loaded StdConv2dSame kernel by its standardised form (call once after loading). */
  standardize(): void {
    for (const name of this.stdConvs) {
      const kernel = this.params.get(name);
      this.params.setTensor(name, standardizeKernel(kernel, STD_CONV_EPS));
    }
  }

  /** Frees the per-grid constants (the weights belong to the ParamStore). */
  disposeConstants(): void {
    for (const { pos, ones } of this.gridConstants.values()) tf.dispose([pos, ones]);
    this.gridConstants.clear();
  }

  private constantsFor(gh: number, gw: number): { pos: tf.Tensor; ones: tf.Tensor } {
    const key = `${gh}x${gw}`;
    let entry = this.gridConstants.get(key);
    if (!entry) {
      const source = this.params.get(`${VIT}pos_embed`).dataSync() as Float32Array;
      // Kept past the engine's tidy: cached for later calls, freed by disposeConstants().
      entry = {
        pos: tf.keep(tf.tensor(resizePosEmbed(source, gh, gw), [1, 1 + gh * gw, DIM])),
        ones: tf.keep(tf.ones([1, gh * gw, 1])),
      };
      this.gridConstants.set(key, entry);
    }
    return entry;
  }

  /** StdConv2dSame: the standardised kernel with timm's dynamic 'same' padding, computed for this size. */
  private stdConv<T>(ops: Ops<T>, name: string, x: T, stride = 1): T {
    const weight = this.params.get(`${name}.weight`);
    const [kh, kw] = weight.shape as number[];
    const [, h, w] = ops.imageShape(x);
    const [top, bottom] = samePad(h, kh!, stride);
    const [left, right] = samePad(w, kw!, stride);
    return ops.conv(x, weight, undefined, { stride, pad: [top, bottom, left, right] });
  }

  /** GroupNormAct: GroupNorm(32) then ReLU unless `act` is false. */
  private groupNorm<T>(ops: Ops<T>, name: string, x: T, act = true): T {
    const y = ops.groupNorm(
      x,
      this.params.get(`${name}.weight`),
      this.params.get(`${name}.bias`),
      GN_GROUPS,
      GN_EPS,
    );
    return act ? ops.relu(y) : y;
  }

  private linear<T>(ops: Ops<T>, name: string, x: T): T {
    return ops.linear(x, this.params.get(`${name}.weight`), this.params.get(`${name}.bias`));
  }

  private layerNorm<T>(ops: Ops<T>, name: string, x: T): T {
    return ops.layerNorm(x, this.params.get(`${name}.weight`), this.params.get(`${name}.bias`), LN_EPS);
  }

  /** timm ViT Block: x + attn(norm1(x)), then x + mlp(norm2(x)) (exact GELU). */
  private block<T>(ops: Ops<T>, i: number, x: T): T {
    const blk = `${VIT}blocks.${i}.`;
    const h = this.layerNorm(ops, `${blk}norm1`, x);
    const [q, k, v] = ops.linearSplit(
      h,
      this.params.get(`${blk}attn.qkv.weight`),
      this.params.get(`${blk}attn.qkv.bias`),
      3,
    ) as [T, T, T];
    const attended = ops.multiHeadAttention(q, k, v, HEADS, (DIM / HEADS) ** -0.5);
    const y = ops.add(x, this.linear(ops, `${blk}attn.proj`, attended));
    const m = this.linear(
      ops,
      `${blk}mlp.fc2`,
      ops.gelu(this.linear(ops, `${blk}mlp.fc1`, this.layerNorm(ops, `${blk}norm2`, y))),
    );
    return ops.add(y, m);
  }

  /**
   * act_postprocess{3,4}: ProjectReadout (each patch token concatenated with the class token, Linear + GELU),
   * tokens back to the (gh, gw) grid, conv 1x1 (and for layer 4 a 3x3 stride-2 conv).
   */
  private reassemble<T>(ops: Ops<T>, i: 3 | 4, x: T, gh: number, gw: number, ones: T): T {
    const prefix = `pretrained.act_postprocess${i}.`;
    const patches = ops.slice(x, 1, 1, gh * gw);
    const readout = ops.mul(ones, ops.slice(x, 1, 0, 1));
    const projected = ops.gelu(this.linear(ops, `${prefix}0.project.0`, ops.concat([patches, readout], 2)));
    let y = conv(ops, this.params, `${prefix}3`, ops.fromTokens(projected, gh, gw));
    if (i === 4) y = conv(ops, this.params, `${prefix}4`, y, { stride: 2, pad: 1 });
    return y;
  }

  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const [n, height, width] = ops.imageShape(inputs[0]!);
    if (n !== 1 || height % 32 !== 0 || width % 32 !== 0)
      throw new Error(`DPT-Hybrid takes one image with sides divisible by 32, got ${n}x${height}x${width}`);
    // ResNetV2 stem and stages (forward hooks 1 and 2 are the outputs of stages 0 and 1).
    let x = this.stdConv(ops, `${BACKBONE}stem.conv`, inputs[0]!, 2);
    x = this.groupNorm(ops, `${BACKBONE}stem.norm`, x);
    const [, sh, sw] = ops.imageShape(x);
    x = ops.maxPool(x, 3, 2, [...samePad(sh, 3, 2), ...samePad(sw, 3, 2)]);
    const stageOutputs: T[] = [];
    for (const [s, stage] of STAGES.entries()) {
      for (let b = 0; b < stage.blocks; b++) {
        const block = `${BACKBONE}stages.${s}.blocks.${b}.`;
        const stride = b === 0 ? stage.stride : 1;
        const shortcut =
          b === 0
            ? this.groupNorm(
                ops,
                `${block}downsample.norm`,
                this.stdConv(ops, `${block}downsample.conv`, x, stride),
                false,
              )
            : x;
        let y = this.groupNorm(ops, `${block}norm1`, this.stdConv(ops, `${block}conv1`, x));
        y = this.groupNorm(ops, `${block}norm2`, this.stdConv(ops, `${block}conv2`, y, stride));
        y = this.groupNorm(ops, `${block}norm3`, this.stdConv(ops, `${block}conv3`, y), false);
        x = ops.relu(ops.add(y, shortcut));
      }
      stageOutputs.push(x);
    }
    // Hybrid patch embedding (1x1 projection of the stride-16 features), class token, resized positions.
    const gh = height / 16;
    const gw = width / 16;
    const { pos, ones } = this.constantsFor(gh, gw);
    const patches = ops.toTokens(conv(ops, this.params, `${VIT}patch_embed.proj`, x));
    let tokens = ops.concat([ops.constant(this.params.get(`${VIT}cls_token`)), patches], 1);
    tokens = ops.add(tokens, ops.constant(pos));
    const onesT = ops.constant(ones);
    const hooked: T[] = [];
    for (let i = 0; i < DEPTH; i++) {
      tokens = this.block(ops, i, tokens);
      if ((HOOK_BLOCKS as readonly number[]).includes(i)) hooked.push(tokens);
    }
    const layers = [
      stageOutputs[0]!,
      stageOutputs[1]!,
      this.reassemble(ops, 3, hooked[0]!, gh, gw, onesT),
      this.reassemble(ops, 4, hooked[1]!, gh, gw, onesT),
    ];
    const rn = layers.map((layer, i) =>
      conv(ops, this.params, `scratch.layer${i + 1}_rn`, layer, { pad: 1 }),
    );
    let path = fusion(ops, this.params, 'scratch.refinenet4', rn[3]!);
    path = fusion(ops, this.params, 'scratch.refinenet3', path, rn[2]);
    path = fusion(ops, this.params, 'scratch.refinenet2', path, rn[1]);
    path = fusion(ops, this.params, 'scratch.refinenet1', path, rn[0]);
    return [{ value: depthHead(ops, this.params, path, true), image: true }];
  }
}
