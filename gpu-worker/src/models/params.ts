import * as tf from '@tensorflow/tfjs';

/**
 * The parameters a model declares, keyed by their name in the original ldm/cldm checkpoint (relative to the
 * model's prefix, e.g. `input_blocks.1.0.in_layers.2.weight`), with the PyTorch shape the checkpoint stores.
 * Values are held in TensorFlow.js layout: conv kernels HWIO, linear weights [in, out].
 */
export class ParamStore {
  /** Declared PyTorch-layout shape of every parameter. */
  readonly specs = new Map<string, number[]>();
  private readonly values = new Map<string, tf.Tensor>();
  private changes = 0;

  /** Bumped whenever a value is set or freed (engines that copy the weights key their copies on it). */
  get version(): number {
    return this.changes;
  }

  /** Declares a parameter (called while a model builds its layers). */
  declare(name: string, torchShape: number[]): string {
    if (this.specs.has(name)) throw new Error(`parameter ${name} declared twice`);
    this.specs.set(name, torchShape);
    return name;
  }

  /** The loaded tensor for a declared parameter. */
  get(name: string): tf.Tensor {
    const value = this.values.get(name);
    if (!value) throw new Error(`parameter ${name} is not loaded`);
    return value;
  }

  /** Whether every declared parameter has a value. */
  get complete(): boolean {
    return this.values.size === this.specs.size;
  }

  /** Sets a parameter from PyTorch-layout float data, converting it to the TensorFlow.js layout. */
  setFromTorch(name: string, data: Float32Array): void {
    const shape = this.specs.get(name);
    if (!shape) throw new Error(`parameter ${name} is not declared`);
    this.values.get(name)?.dispose();
    this.values.set(name, torchToTfLayout(data, shape));
    this.changes++;
  }

  /**
   * Sets a parameter from a tensor already in TensorFlow.js layout (the trainer stores `tf.Variable`s this way);
   * the store takes ownership.
   */
  setTensor(name: string, value: tf.Tensor): void {
    const shape = this.specs.get(name);
    if (!shape) throw new Error(`parameter ${name} is not declared`);
    const current = this.values.get(name);
    if (current && current !== value) current.dispose();
    this.values.set(name, value);
    this.changes++;
  }

  /** The loaded parameters as [name, value] pairs, in declaration order of loading. */
  entries(): IterableIterator<[string, tf.Tensor]> {
    return this.values.entries();
  }

  /** Frees every loaded tensor. */
  dispose(): void {
    for (const value of this.values.values()) value.dispose();
    this.values.clear();
    this.changes++;
  }
}

/** PyTorch OIHW conv kernels -> HWIO, [out, in] linear weights -> [in, out]; 1-D tensors unchanged. */
export function torchToTfLayout(data: Float32Array, shape: number[]): tf.Tensor {
  if (shape.length === 4) {
    const [o, i, h, w] = shape as [number, number, number, number];
    const out = new Float32Array(data.length);
    for (let oc = 0; oc < o; oc++)
      for (let ic = 0; ic < i; ic++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            out[((y * w + x) * i + ic) * o + oc] = data[((oc * i + ic) * h + y) * w + x]!;
    return tf.tensor4d(out, [h, w, i, o]);
  }
  if (shape.length === 2) {
    const [o, i] = shape as [number, number];
    const out = new Float32Array(data.length);
    for (let oc = 0; oc < o; oc++) for (let ic = 0; ic < i; ic++) out[ic * o + oc] = data[oc * i + ic]!;
    return tf.tensor2d(out, [i, o]);
  }
  return tf.tensor(data, shape);
}
