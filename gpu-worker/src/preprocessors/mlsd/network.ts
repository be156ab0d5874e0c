import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import { type FoldedNorm, foldBatchNorm } from '../annotator-weights.ts';

/** A conv followed by a BatchNorm (folded at load time) and an optional activation. */
interface ConvNorm {
  weight: string;
  bias?: string;
  norm: string;
  groups: number;
  kernel: number;
  /** PyTorch stride and padding; stride-2 convs pad bottom/right by one first (M-LSD's TFLite-style padding). */
  stride: number;
  pad: number;
  dilation: number;
  act: 'relu6' | 'relu' | 'none';
}

/** One InvertedResidual of the MobileNetV2 backbone. */
interface Inverted {
  layers: ConvNorm[];
  residual: boolean;
}

/**
 * M-LSD large (MobileV2_MLSD_Large of ControlNet 1.1's annotator/mlsd): a truncated MobileNetV2 (features 0..13)
 * and an FPN-like decoder; input [1, H, W, 4] (RGB / 127.5 - 1 and a constant channel), H and W multiples of 16;
 * output the 9 channels `x[:, 7:]` at H/2 x W/2 (channel 0 the line-centre logit, 1..4 the endpoint displacements).
 * Parameter names are the checkpoint's (mlsd_large_512_fp32.pth); BatchNorms are folded by {@link foldNorms}.
 */
export class MlsdNetwork implements Network {
  readonly kind = 'mlsd-large';
  readonly params = new ParamStore();
  private readonly folded = new Map<string, FoldedNorm>();
  private readonly stem: ConvNorm;
  private readonly blocks: Inverted[] = [];
  private readonly layers = new Map<string, ConvNorm>();

  constructor() {
    this.stem = this.convNorm('backbone.features.0', 4, 32, 3, 2, 1, 'relu6', false, '.0', '.1');
    // MobileNetV2's (expand ratio t, channels c, repeats n, first stride s), cut after the 96-channel stage.
    const settings = [
      [1, 16, 1, 1],
      [6, 24, 2, 2],
      [6, 32, 3, 2],
      [6, 64, 4, 2],
      [6, 96, 3, 1],
    ] as const;
    let inputs = 32;
    let index = 1;
    for (const [t, c, n, s] of settings) {
      for (let i = 0; i < n; i++) {
        this.blocks.push(this.inverted(`backbone.features.${index++}.conv`, inputs, c, i === 0 ? s : 1, t));
        inputs = c;
      }
    }
    this.declareBlockA('block15', 64, 96, 64, 64);
    this.declareBlockB('block16', 128, 64);
    this.declareBlockA('block17', 32, 64, 64, 64);
    this.declareBlockB('block18', 128, 64);
    this.declareBlockA('block19', 24, 64, 64, 64);
    this.declareBlockB('block20', 128, 64);
    this.declareBlockA('block21', 16, 64, 64, 64);
    this.declareBlockB('block22', 128, 64);
    this.convNorm('block23.conv1', 64, 64, 3, 1, 1, 'relu', true, '.0', '.1', 5);
    this.convNorm('block23.conv2', 64, 64, 3, 1, 1, 'relu', true, '.0', '.1');
    this.params.declare('block23.conv3.weight', [16, 64, 1, 1]);
    this.params.declare('block23.conv3.bias', [16]);
  }

  /** Folds every BatchNorm (and the bias of the conv before it) into scale/shift tensors; call once after loading. */
  foldNorms(): void {
    this.disposeFolded();
    for (const layer of this.allLayers()) {
      this.folded.set(layer.norm, foldBatchNorm(this.params, layer.norm, layer.bias));
    }
  }

  /** Frees the folded norm tensors (the params are the owner's to dispose). */
  disposeFolded(): void {
    for (const { scale, shift } of this.folded.values()) {
      scale.dispose();
      shift.dispose();
    }
    this.folded.clear();
  }

  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    let x = this.apply(ops, this.stem, inputs[0]!);
    const features: T[] = [];
    for (const [i, block] of this.blocks.entries()) {
      let y = x;
      for (const layer of block.layers) y = this.apply(ops, layer, y);
      x = block.residual ? ops.add(x, y) : y;
      if ([1, 3, 6, 10, 13].includes(i + 1)) features.push(x);
    }
    const [c1, c2, c3, c4, c5] = features as [T, T, T, T, T];
    x = this.blockB(ops, 'block16', this.blockA(ops, 'block15', c4, c5, false));
    x = this.blockB(ops, 'block18', this.blockA(ops, 'block17', c3, x, true));
    x = this.blockB(ops, 'block20', this.blockA(ops, 'block19', c2, x, true));
    x = this.blockB(ops, 'block22', this.blockA(ops, 'block21', c1, x, true));
    x = this.apply(ops, this.layer('block23.conv1'), x);
    x = this.apply(ops, this.layer('block23.conv2'), x);
    x = ops.conv(x, this.params.get('block23.conv3.weight'), this.params.get('block23.conv3.bias'));
    return [{ value: ops.sliceChannels(x, 7, 9), image: true }];
  }

  private layer(name: string): ConvNorm {
    const layer = this.layers.get(name);
    if (!layer) throw new Error(`mlsd: no layer ${name}`);
    return layer;
  }

  private allLayers(): ConvNorm[] {
    return [...this.layers.values()];
  }

  /** Declares `<prefix><convKey>.weight` (+ bias) and the BatchNorm `<prefix><normKey>`. */
  private convNorm(
    prefix: string,
    inputs: number,
    outputs: number,
    kernel: number,
    stride: number,
    groups: number,
    act: ConvNorm['act'],
    bias: boolean,
    convKey: string,
    normKey: string,
    dilation = 1,
  ): ConvNorm {
    const conv = prefix + convKey;
    const norm = prefix + normKey;
    this.params.declare(`${conv}.weight`, [outputs, inputs / groups, kernel, kernel]);
    if (bias) this.params.declare(`${conv}.bias`, [outputs]);
    for (const key of ['weight', 'bias', 'running_mean', 'running_var'])
      this.params.declare(`${norm}.${key}`, [outputs]);
    const layer: ConvNorm = {
      weight: `${conv}.weight`,
      bias: bias ? `${conv}.bias` : undefined,
      norm,
      groups,
      kernel,
      stride,
      pad: stride === 2 ? 0 : dilation * ((kernel - 1) / 2),
      dilation,
      act,
    };
    this.layers.set(prefix, layer);
    return layer;
  }

  /** InvertedResidual: optional 1x1 expansion, 3x3 depthwise, 1x1 linear projection. */
  private inverted(
    prefix: string,
    inputs: number,
    outputs: number,
    stride: number,
    expand: number,
  ): Inverted {
    const hidden = Math.round(inputs * expand);
    const layers: ConvNorm[] = [];
    let i = 0;
    if (expand !== 1)
      layers.push(this.convNorm(`${prefix}.${i++}`, inputs, hidden, 1, 1, 1, 'relu6', false, '.0', '.1'));
    layers.push(
      this.convNorm(`${prefix}.${i++}`, hidden, hidden, 3, stride, hidden, 'relu6', false, '.0', '.1'),
    );
    layers.push(this.convNorm(prefix, hidden, outputs, 1, 1, 1, 'none', false, `.${i}`, `.${i + 1}`));
    return { layers, residual: stride === 1 && inputs === outputs };
  }

  private declareBlockA(name: string, inA: number, inB: number, outA: number, outB: number): void {
    this.convNorm(`${name}.conv1`, inB, outB, 1, 1, 1, 'relu', true, '.0', '.1');
    this.convNorm(`${name}.conv2`, inA, outA, 1, 1, 1, 'relu', true, '.0', '.1');
  }

  private declareBlockB(name: string, inputs: number, outputs: number): void {
    this.convNorm(`${name}.conv1`, inputs, inputs, 3, 1, 1, 'relu', true, '.0', '.1');
    this.convNorm(`${name}.conv2`, inputs, outputs, 3, 1, 1, 'relu', true, '.0', '.1');
  }

  /** BlockTypeA: cat(conv2(a), upsample2x(conv1(b))) (bilinear, align_corners=True). */
  private blockA<T>(ops: Ops<T>, name: string, a: T, b: T, upscale: boolean): T {
    let y = this.apply(ops, this.layer(`${name}.conv1`), b);
    const x = this.apply(ops, this.layer(`${name}.conv2`), a);
    if (upscale) {
      const [, h, w] = ops.imageShape(y);
      y = ops.resize(y, h * 2, w * 2, 'bilinear', true);
    }
    return ops.concatChannels([x, y]);
  }

  /** BlockTypeB: conv2(conv1(x) + x). */
  private blockB<T>(ops: Ops<T>, name: string, x: T): T {
    const y = ops.add(this.apply(ops, this.layer(`${name}.conv1`), x), x);
    return this.apply(ops, this.layer(`${name}.conv2`), y);
  }

  private apply<T>(ops: Ops<T>, layer: ConvNorm, x: T): T {
    const norm = this.folded.get(layer.norm);
    if (!norm) throw new Error('mlsd: BatchNorms are not folded (call foldNorms after loading)');
    // ConvBNReLU with stride 2 pads (0, 1, 0, 1) before an unpadded conv (TFLite "same" padding).
    const pad = layer.stride === 2 ? ([0, 1, 0, 1] as const) : layer.pad;
    const y = ops.conv(x, this.params.get(layer.weight), undefined, {
      stride: layer.stride,
      pad,
      groups: layer.groups,
      dilation: layer.dilation,
    });
    const z = ops.channelAffine(y, norm.scale, norm.shift);
    if (layer.act === 'relu6') return ops.clip(z, 0, 6);
    if (layer.act === 'relu') return ops.relu(z);
    return z;
  }
}
