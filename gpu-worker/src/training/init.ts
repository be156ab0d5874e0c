import type { ParamStore } from '../models/params.ts';
import { gaussianNoise, streamOf } from '../pipelines/noise.ts';

/**
 * Fills a store for training from scratch, seeded: norms scale 1 / shift 0, biases 0, kernels and matrices
 * N(0, 1/fan_in) (variance-preserving, like PyTorch's default scale). `zero(name)` picks parameters set to 0
 * (zero-initialised output layers).
 */
export function initParams(
  params: ParamStore,
  seed: number,
  zero: (name: string) => boolean = () => false,
): void {
  for (const [name, shape] of params.specs) {
    const count = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (zero(name) || (shape.length === 1 && name.endsWith('.bias'))) values = new Float32Array(count);
    else if (shape.length === 1) values = new Float32Array(count).fill(1);
    else {
      values = gaussianNoise(seed, streamOf(name), count);
      const scale = 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
      for (let i = 0; i < count; i++) values[i] = values[i]! * scale;
    }
    params.setFromTorch(name, values);
  }
}
