import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';
import type { FoldedBatchNorm } from './layers.ts';
import { UniFormerBackbone } from './uniformer.ts';
import { UperHead } from './upernet.ts';

/** ADE20K classes (decode_head num_classes in upernet_global_small's config). */
export const ADE20K_CLASSES = 150;

/**
 * mmseg EncoderDecoder(UniFormer-S, UPerHead) in whole-image test mode, as UniformerDetector builds it from
 * exp/upernet_global_small/config.py. Parameters keep the checkpoint's names (`backbone.*`, `decode_head.*`);
 * the auxiliary FCN head is training-only and not declared.
 *
 * Inputs: the normalised image at the test scale, and an image of the original size (only its shape is read:
 * it is `img_meta['ori_shape']`, and keys the ONNX graph). Outputs: the logits at stride 4, and the logits resized
 * as EncoderDecoder does (bilinear to the network input's size, then to the original size, align_corners False).
 */
export class UperNetUniFormer implements Network {
  readonly kind = 'seg-uniformer-upernet';
  readonly params = new ParamStore();
  private readonly backbone = new UniFormerBackbone(this.params, 'backbone.');
  private readonly head = new UperHead(
    this.params,
    'decode_head.',
    UniFormerBackbone.channels,
    ADE20K_CLASSES,
  );
  private readonly norms: FoldedBatchNorm[] = [...this.backbone.batchNorms(), ...this.head.batchNorms()];

  /** Folds the batch norms; call after the weights are loaded. */
  prepare(): void {
    for (const bn of this.norms) bn.prepare();
  }

  /** The backbone's four stage outputs (for tests). */
  features<T>(o: Ops<T>, image: T): T[] {
    return this.backbone.forward(o, image);
  }

  forward<T>(o: Ops<T>, inputs: T[]): NetworkOutput<T>[] {
    const [image, original] = inputs as [T, T];
    const logits = this.head.forward(o, this.backbone.forward(o, image));
    // EncoderDecoder.encode_decode: resize to the input's size; whole_inference(rescale=True): to ori_shape.
    const [, h, w] = o.imageShape(image);
    const [, oh, ow] = o.imageShape(original);
    let full = o.resize(logits, h, w, 'bilinear', false);
    if (oh !== h || ow !== w) full = o.resize(full, oh, ow, 'bilinear', false);
    return [
      { value: logits, image: true },
      { value: full, image: true },
    ];
  }

  dispose(): void {
    for (const bn of this.norms) bn.dispose();
    this.params.dispose();
  }
}
