import * as tf from '@tensorflow/tfjs';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import type { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import type { ClipTextModel } from '../text/model.ts';
import type { Network } from './network.ts';
import { tfOps } from './tf-ops.ts';

/** Which runtime runs the models, on what, at which precision (reported by the worker). */
export interface EngineInfo {
  engine: 'tfjs' | 'onnxruntime';
  /** cpu / cuda for ONNX Runtime; the tfjs backend's device (cpu, wasm, cuda). */
  device: string;
  precision: 'fp32' | 'fp16';
  /** Free-form detail: the tfjs backend package, the ORT execution providers and threads. */
  detail: string;
}

/** A ControlNet unit active at a step: its encoded hint and the 13 residual scales (strength, guess mode). */
export interface ScaledControl {
  net: ControlNetHead;
  /** Batch 1 (shared), or the controlled batch / a divisor of it (repeated). */
  encodedHint: tf.Tensor4D;
  scales: number[];
}

/**
 * The model calls of sampling, generation and the text encoder, on one runtime. Tensors in and out are
 * TensorFlow.js tensors (the caller owns both); the runtime behind may keep its own copies of the weights.
 */
export interface ModelEngine {
  readonly info: EngineInfo;
  /** ControlNet hint encoder (once per request). */
  encodeHint(net: ControlNetHead, hint: tf.Tensor4D): Promise<tf.Tensor4D>;
  /** A ControlNet's unscaled residuals. */
  controlNet(
    net: ControlNetHead,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ): Promise<tf.Tensor4D[]>;
  /** The UNet with optional (already scaled) residuals. */
  unet(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    controls?: tf.Tensor4D[],
  ): Promise<tf.Tensor4D>;
  /**
   * One denoising evaluation: the units' residuals (each scaled, summed in unit order) on the first
   * `controlled` batch entries of (x, context), zero for the rest (guess mode's unconditional half), added to
   * the UNet. One call per step, so an engine can keep the residuals on its device.
   */
  controlledEps(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    units: readonly ScaledControl[],
    controlled: number,
  ): Promise<tf.Tensor4D>;
  /** VAE decode of sampled (scaled) latents to images in about [-1, 1]. */
  decodeLatents(vae: VaeDecoder, latents: tf.Tensor4D): Promise<tf.Tensor4D>;
  /** VAE encoder: scaled latent mean of images in [-1, 1]. */
  encodeMean(vae: VaeEncoder, images: tf.Tensor4D): Promise<tf.Tensor4D>;
  /** CLIP `last_hidden_state` for int32 ids [B, T]. */
  encodeText(clip: ClipTextModel, ids: tf.Tensor2D): Promise<tf.Tensor3D>;
  /** An annotator network on NHWC float images; image outputs come back NHWC, in the network's order. */
  runNetwork(net: Network, inputs: readonly tf.Tensor4D[]): Promise<tf.Tensor[]>;
  /**
   * Copies of a model's weights the process holds while this engine runs it, the caller's tfjs tensors
   * included: 1 for tfjs, 2 for ONNX Runtime (its sessions keep their own). Memory budgets multiply by it.
   */
  readonly weightCopies: number;
  /** Frees whatever the engine keeps for `model` (an evicted head's sessions); the model stays the caller's. */
  releaseModel(model: object): Promise<void>;
  /** Frees what the engine holds (sessions); the models stay the caller's. */
  dispose(): Promise<void>;
}

/** Repeats a hint along the batch so it matches `batch` (a batch-1 hint broadcasts as it is). */
export function repeatHint(hint: tf.Tensor4D, batch: number): tf.Tensor4D {
  const hintBatch = hint.shape[0];
  if (hintBatch === 1 || hintBatch === batch) return hint;
  return tf.concat(Array<tf.Tensor4D>(batch / hintBatch).fill(hint), 0);
}

/** The TensorFlow.js engine: the models' eager forward passes on the active tfjs backend. */
export class TfModelEngine implements ModelEngine {
  readonly weightCopies = 1;

  constructor(private readonly fixedInfo?: EngineInfo) {}

  async releaseModel() {}

  get info(): EngineInfo {
    const backend = tf.getBackend();
    return this.fixedInfo ?? { engine: 'tfjs', device: backend, precision: 'fp32', detail: backend };
  }

  async encodeHint(net: ControlNetHead, hint: tf.Tensor4D) {
    return net.encodeHint(hint);
  }

  async controlNet(
    net: ControlNetHead,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ) {
    return net.forward(x, timesteps, context, encodedHint);
  }

  async unet(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    controls?: tf.Tensor4D[],
  ) {
    return unet.forward(x, timesteps, context, controls);
  }

  async controlledEps(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    units: readonly ScaledControl[],
    controlled: number,
  ) {
    const sum = await controlResiduals(x, timesteps, context, units, controlled, async (net, ...args) =>
      net.forward(...args),
    );
    try {
      return unet.forward(x, timesteps, context, sum);
    } finally {
      if (sum) tf.dispose(sum);
    }
  }

  async decodeLatents(vae: VaeDecoder, latents: tf.Tensor4D) {
    return vae.decodeLatents(latents);
  }

  async encodeMean(vae: VaeEncoder, images: tf.Tensor4D) {
    return vae.encodeMean(images);
  }

  async encodeText(clip: ClipTextModel, ids: tf.Tensor2D) {
    return clip.encode(ids);
  }

  async runNetwork(net: Network, inputs: readonly tf.Tensor4D[]) {
    return tf.tidy(() => net.forward(tfOps, [...inputs]).map((o) => o.value));
  }

  async dispose() {}
}

/** The tfjs engine on whichever backend is active. */
export const tfModelEngine = new TfModelEngine();

/** Runs one ControlNet for {@link controlResiduals}: eagerly on tfjs, or through an engine's own graph. */
export type ResidualsOf = (
  net: ControlNetHead,
  x: tf.Tensor4D,
  timesteps: readonly number[],
  context: tf.Tensor3D,
  encodedHint: tf.Tensor4D,
) => Promise<tf.Tensor4D[]>;

/**
 * The units' residuals, each scaled and summed in unit order, on the first `controlled` batch entries of
 * (x, context), with zeros for the rest (guess mode's unconditional half: h + 0 is exact); undefined without
 * units. The caller disposes them.
 */
export async function controlResiduals(
  x: tf.Tensor4D,
  timesteps: readonly number[],
  context: tf.Tensor3D,
  units: readonly ScaledControl[],
  controlled: number,
  residualsOf: ResidualsOf,
): Promise<tf.Tensor4D[] | undefined> {
  const batch = x.shape[0];
  const owned: tf.Tensor[] = [];
  let sum: tf.Tensor4D[] | undefined;
  try {
    const xs = controlled === batch ? x : x.slice([0, 0, 0, 0], [controlled, -1, -1, -1]);
    const cs = controlled === batch ? context : context.slice([0, 0, 0], [controlled, -1, -1]);
    if (xs !== x) owned.push(xs, cs);
    for (const unit of units) {
      const hint = repeatHint(unit.encodedHint, controlled);
      if (hint !== unit.encodedHint) owned.push(hint);
      const residuals = await residualsOf(unit.net, xs, timesteps.slice(0, controlled), cs, hint);
      const previous = sum;
      sum = tf.tidy(() =>
        residuals.map((r, i) => {
          const scaled = r.mul(unit.scales[i]!) as tf.Tensor4D;
          return previous ? (previous[i]!.add(scaled) as tf.Tensor4D) : scaled;
        }),
      );
      tf.dispose([...residuals, ...(previous ?? [])]);
    }
    if (sum && controlled < batch) {
      const unpadded = sum;
      sum = tf.tidy(() =>
        unpadded.map(
          (r) =>
            tf.concat(
              [r, tf.zeros([batch - controlled, ...r.shape.slice(1)] as [number, number, number, number])],
              0,
            ) as tf.Tensor4D,
        ),
      );
      tf.dispose(unpadded);
    }
    return sum;
  } catch (error) {
    if (sum) tf.dispose(sum);
    throw error;
  } finally {
    tf.dispose(owned);
  }
}
