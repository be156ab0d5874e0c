import type { ParamStore } from '../models/params.ts';
import type { Ops } from './ops.ts';

/** One output of a {@link Network}: an image (NHWC when it reaches the caller) or an ordinary tensor. */
export interface NetworkOutput<T> {
  value: T;
  image: boolean;
}

/**
 * A feed-forward network written once against {@link Ops} (the annotator networks of the preprocessors), run
 * by any engine through `ModelEngine.runNetwork`. Its inputs are NHWC images; its weights live in `params`
 * (ONNX Runtime keys its graph cache on their hash).
 */
export interface Network {
  /** Short name, used in logs and graph cache file names (e.g. `hed`, `midas-dpt-hybrid`). */
  readonly kind: string;
  readonly params: ParamStore;
  /** The forward pass on a backend. */
  forward<T>(ops: Ops<T>, inputs: T[]): NetworkOutput<T>[];
}
