import type { Ops } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';
import { Conv, ConvBnRelu, type FoldedBatchNorm } from './layers.ts';

/** PPM pooling scales and channels of UPerHead as upernet_uniformer configures it. */
const POOL_SCALES = [1, 2, 3, 6] as const;
const CHANNELS = 512;

/** mmseg UPerHead (`decode_head.*`): PPM on the last feature, FPN top-down, fuse, 1x1 classifier. */
export class UperHead {
  private readonly ppm: ConvBnRelu[];
  private readonly bottleneck: ConvBnRelu;
  private readonly laterals: ConvBnRelu[];
  private readonly fpnConvs: ConvBnRelu[];
  private readonly fpnBottleneck: ConvBnRelu;
  private readonly convSeg: Conv;
  constructor(params: ParamStore, prefix: string, inChannels: readonly number[], classes: number) {
    const top = inChannels[inChannels.length - 1]!;
    this.ppm = POOL_SCALES.map(
      (_, i) => new ConvBnRelu(params, `${prefix}psp_modules.${i}.1`, top, CHANNELS, 1),
    );
    this.bottleneck = new ConvBnRelu(
      params,
      `${prefix}bottleneck`,
      top + POOL_SCALES.length * CHANNELS,
      CHANNELS,
      3,
    );
    this.laterals = inChannels
      .slice(0, -1)
      .map((c, i) => new ConvBnRelu(params, `${prefix}lateral_convs.${i}`, c, CHANNELS, 1));
    this.fpnConvs = inChannels
      .slice(0, -1)
      .map((_, i) => new ConvBnRelu(params, `${prefix}fpn_convs.${i}`, CHANNELS, CHANNELS, 3));
    this.fpnBottleneck = new ConvBnRelu(
      params,
      `${prefix}fpn_bottleneck`,
      inChannels.length * CHANNELS,
      CHANNELS,
      3,
    );
    this.convSeg = new Conv(params, `${prefix}conv_seg`, CHANNELS, classes, 1);
  }

  /** Bilinear, align_corners=False (mmseg `resize` as the head's config sets it); a no-op at the same size. */
  private static resizeTo<T>(o: Ops<T>, x: T, like: T): T {
    const [, h, w] = o.imageShape(like);
    const [, xh, xw] = o.imageShape(x);
    return xh === h && xw === w ? x : o.resize(x, h, w, 'bilinear', false);
  }

  /** PPM then the bottleneck (UPerHead.psp_forward). */
  private psp<T>(o: Ops<T>, x: T): T {
    const pooled = this.ppm.map((branch, i) => {
      const s = POOL_SCALES[i]!;
      return UperHead.resizeTo(o, branch.forward(o, o.adaptiveAvgPool(x, s, s)), x);
    });
    return this.bottleneck.forward(o, o.concatChannels([x, ...pooled]));
  }

  /** Class logits at the first feature's resolution (stride 4). */
  forward<T>(o: Ops<T>, features: T[]): T {
    const laterals = this.laterals.map((conv, i) => conv.forward(o, features[i]!));
    laterals.push(this.psp(o, features[features.length - 1]!));
    for (let i = laterals.length - 1; i > 0; i--) {
      laterals[i - 1] = o.add(laterals[i - 1]!, UperHead.resizeTo(o, laterals[i]!, laterals[i - 1]!));
    }
    const outs = this.fpnConvs.map((conv, i) => conv.forward(o, laterals[i]!));
    outs.push(laterals[laterals.length - 1]!);
    const fused = outs.map((x) => UperHead.resizeTo(o, x, outs[0]!));
    // cls_seg: dropout is the identity at test time.
    return this.convSeg.forward(o, this.fpnBottleneck.forward(o, o.concatChannels(fused)));
  }

  /** Batch norms to fold once the weights are loaded. */
  batchNorms(): FoldedBatchNorm[] {
    return [...this.ppm, this.bottleneck, ...this.laterals, ...this.fpnConvs, this.fpnBottleneck].map(
      (c) => c.bn,
    );
  }
}
