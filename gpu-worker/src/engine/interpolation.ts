import type { ResizeMode } from './ops.ts';

/** PyTorch's bicubic coefficient (upsample_bicubic2d, A = -0.75). */
const CUBIC_A = -0.75;

function cubicWeights(t: number): [number, number, number, number] {
  const near = (x: number) => ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1;
  const far = (x: number) => ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * The [dst, src] matrix of one axis of F.interpolate (PyTorch's source-index rules: half-pixel centres clamped
 * at 0 for bilinear, unclamped with edge taps for bicubic, `floor(d * src / dst)` for nearest, corner-aligned
 * when `alignCorners`). Resizing is separable, so an image resize is this matrix applied along H then W; both
 * engines do exactly that, so they share PyTorch's semantics (tfjs's resize kernels extrapolate at borders).
 */
export function interpolationMatrix(
  src: number,
  dst: number,
  mode: ResizeMode,
  alignCorners = false,
): Float32Array {
  const m = new Float32Array(dst * src);
  const scale = alignCorners ? (dst > 1 ? (src - 1) / (dst - 1) : 0) : src / dst;
  const clampIndex = (i: number) => Math.min(Math.max(i, 0), src - 1);
  for (let d = 0; d < dst; d++) {
    if (mode === 'nearest') {
      m[d * src + Math.min(Math.floor(d * scale), src - 1)] = 1;
      continue;
    }
    let x = alignCorners ? d * scale : (d + 0.5) * scale - 0.5;
    if (mode === 'bilinear') {
      if (x < 0) x = 0;
      const x0 = Math.floor(x);
      const x1 = Math.min(x0 + 1, src - 1);
      const frac = x - x0;
      m[d * src + x0] = (m[d * src + x0] as number) + 1 - frac;
      m[d * src + x1] = (m[d * src + x1] as number) + frac;
      continue;
    }
    const x0 = Math.floor(x);
    const weights = cubicWeights(x - x0);
    for (let k = 0; k < 4; k++) {
      const at = d * src + clampIndex(x0 - 1 + k);
      m[at] = (m[at] as number) + weights[k]!;
    }
  }
  return m;
}
