import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import { EfficientNetB5Encoder } from './efficientnet.ts';
import { Conv, FoldedBatchNorm, PointwiseConv1d } from './layers.ts';

/** nn.BatchNorm2d's default eps (the decoder's norms; the encoder's use geffnet's TF eps). */
const BN_EPS = 1e-5;
/** nn.LeakyReLU's default slope. */
const LEAKY_SLOPE = 0.01;

/** UpSampleBN: bilinear (align_corners) to the skip's size, concat, then twice conv3x3 -> BN -> LeakyReLU. */
class UpSampleBN {
  private readonly conv1: Conv;
  private readonly bn1: FoldedBatchNorm;
  private readonly conv2: Conv;
  private readonly bn2: FoldedBatchNorm;
  constructor(params: ParamStore, name: string, inChannels: number, outChannels: number) {
    this.conv1 = new Conv(params, `${name}._net.0`, inChannels, outChannels, 3, { pad: 1 });
    this.bn1 = new FoldedBatchNorm(params, `${name}._net.1`, outChannels, BN_EPS);
    this.conv2 = new Conv(params, `${name}._net.3`, outChannels, outChannels, 3, { pad: 1 });
    this.bn2 = new FoldedBatchNorm(params, `${name}._net.4`, outChannels, BN_EPS);
  }

  forward<T>(o: Ops<T>, x: T, skip: T): T {
    const [, h, w] = o.imageShape(skip);
    let f = o.concatChannels([o.resize(x, h, w, 'bilinear', true), skip]);
    f = o.leakyRelu(this.bn1.forward(o, this.conv1.forward(o, f)), LEAKY_SLOPE);
    return o.leakyRelu(this.bn2.forward(o, this.conv2.forward(o, f)), LEAKY_SLOPE);
  }

  prepare(): void {
    this.bn1.prepare();
    this.bn2.prepare();
  }

  dispose(): void {
    this.bn1.dispose();
    this.bn2.dispose();
  }
}

/** `out_conv_res{4,2,1}`: Conv1d(k=1) -> ReLU x3 -> Conv1d(k=1) to 4 channels, run on every pixel (test mode). */
class PixelMlp {
  private readonly layers: PointwiseConv1d[];
  constructor(params: ParamStore, name: string, inChannels: number) {
    this.layers = [
      new PointwiseConv1d(params, `${name}.0`, inChannels, 128),
      new PointwiseConv1d(params, `${name}.2`, 128, 128),
      new PointwiseConv1d(params, `${name}.4`, 128, 128),
      new PointwiseConv1d(params, `${name}.6`, 128, 4),
    ];
  }

  forward<T>(o: Ops<T>, x: T): T {
    let y = x;
    for (const [i, layer] of this.layers.entries()) {
      y = layer.forward(o, y);
      if (i < this.layers.length - 1) y = o.relu(y);
    }
    return y;
  }

  prepare(): void {
    for (const layer of this.layers) layer.prepare();
  }

  dispose(): void {
    for (const layer of this.layers) layer.dispose();
  }
}

/**
 * `norm_normalize`: channels 0-2 divided by their length (+1e-10), kappa (channel 3) -> elu(kappa) + 1 + 0.01,
 * each step in the original's order.
 */
function normNormalize<T>(o: Ops<T>, x: T): T {
  const [nx, ny, nz, kappa] = [0, 1, 2, 3].map((c) => o.sliceChannels(x, c, 1)) as [T, T, T, T];
  const norm = o.addScalar(o.sqrt(o.add(o.add(o.mul(nx, nx), o.mul(ny, ny)), o.mul(nz, nz))), 1e-10);
  const k = o.addScalar(o.addScalar(o.elu(kappa), 1), 0.01);
  return o.concatChannels([o.div(nx, norm), o.div(ny, norm), o.div(nz, norm), k]);
}

/**
 * normal_bae's NNET (Bae et al. 2021, architecture 'BN') in eval mode: EfficientNet-B5 encoder, U-Net decoder to
 * 1/2 resolution, a 1/8 prediction refined by per-pixel MLPs at 1/4, 1/2 and full resolution. In test mode the
 * uncertainty-guided point sampling is off: every pixel is refined, so it is all convolutions and bilinear
 * (align_corners) x2 upsampling. Input: the ImageNet-normalised RGB image, height and width multiples of 8.
 * Outputs: out_res8 and out_res1 (images; channels: unit normal x, y, z and kappa).
 */
export class NormalBaeNetwork implements Network {
  readonly kind = 'normalbae';
  readonly params = new ParamStore();
  private readonly encoder: EfficientNetB5Encoder;
  private readonly conv2: Conv;
  private readonly ups: UpSampleBN[];
  private readonly outRes8: Conv;
  private readonly mlps: [PixelMlp, PixelMlp, PixelMlp];

  constructor() {
    const p = this.params;
    this.encoder = new EfficientNetB5Encoder(p, 'encoder.original_model.');
    this.conv2 = new Conv(p, 'decoder.conv2', 2048, 2048, 1);
    this.ups = [
      new UpSampleBN(p, 'decoder.up1', 2048 + 176, 1024),
      new UpSampleBN(p, 'decoder.up2', 1024 + 64, 512),
      new UpSampleBN(p, 'decoder.up3', 512 + 40, 256),
      new UpSampleBN(p, 'decoder.up4', 256 + 24, 128),
    ];
    this.outRes8 = new Conv(p, 'decoder.out_conv_res8', 512, 4, 3, { pad: 1 });
    this.mlps = [
      new PixelMlp(p, 'decoder.out_conv_res4', 512 + 4),
      new PixelMlp(p, 'decoder.out_conv_res2', 256 + 4),
      new PixelMlp(p, 'decoder.out_conv_res1', 128 + 4),
    ];
  }

  /** Folds the BatchNorms and builds the 1x1 kernels; call once after the weights are loaded. */
  prepare(): void {
    this.encoder.prepare();
    for (const up of this.ups) up.prepare();
    for (const mlp of this.mlps) mlp.prepare();
  }

  forward<T>(o: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const [, h, w] = o.imageShape(inputs[0]!);
    if (h % 8 || w % 8) throw new Error(`normal_bae needs a height and width divisible by 8, got ${h}x${w}`);
    const f = this.encoder.forward(o, inputs[0]!);
    const d0 = this.conv2.forward(o, f.block4);
    const d1 = this.ups[0]!.forward(o, d0, f.block3);
    const d2 = this.ups[1]!.forward(o, d1, f.block2);
    const d3 = this.ups[2]!.forward(o, d2, f.block1);
    const d4 = this.ups[3]!.forward(o, d3, f.block0);
    const res8 = normNormalize(o, this.outRes8.forward(o, d2));
    let out = res8;
    for (const [i, features] of [d2, d3, d4].entries()) {
      const [, fh, fw] = o.imageShape(features);
      const up = (x: T) => o.resize(x, 2 * fh, 2 * fw, 'bilinear', true);
      out = normNormalize(o, this.mlps[i]!.forward(o, o.concatChannels([up(features), up(out)])));
    }
    return [
      { value: res8, image: true },
      { value: out, image: true },
    ];
  }

  /** Frees the loaded weights and the tensors derived from them. */
  dispose(): void {
    this.encoder.dispose();
    for (const up of this.ups) up.dispose();
    for (const mlp of this.mlps) mlp.dispose();
    this.params.dispose();
  }
}
