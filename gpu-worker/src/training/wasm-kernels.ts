import * as tf from '@tensorflow/tfjs';
import { attentionStrategy } from '../models/layers.ts';

/**
 * Gradient kernels the tfjs wasm backend does not ship, built from kernels it has. Training on wasm needs
 * `Conv2DBackpropFilter` (the filter gradient of every conv, including `tf.fused.conv2d`'s); every other backward
 * kernel the UNet / ControlNet / VAE decoder use (Conv2DBackpropInput, ResizeNearestNeighborGrad, BatchMatMul,
 * Softmax/Erf/Sigmoid via elementwise ops) exists there. tfjs-node and the cpu backend have their own kernel.
 */

interface WasmLikeBackend extends tf.KernelBackend {
  readSync(dataId: object): tf.backend_util.BackendValues;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The attributes tfjs passes to both conv gradient kernels. */
interface ConvGradAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * dW = im2col(x)^T · dy. The column matrix is built transposed ([kh*kw*cin, M]) in JavaScript so the product is
 * an untransposed 2-D matMul, which the wasm backend sends to XNNPACK; its [kh*kw*cin, cout] result is already
 * the HWIO filter layout.
 */
function conv2dBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmLikeBackend;
  const x = args.inputs['x']!;
  const dy = args.inputs['dy']!;
  const attrs = (args.attrs ?? {}) as unknown as ConvGradAttrs & {
    filterShape: [number, number, number, number];
  };
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter (wasm): only NHWC is supported');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const [kh, kw, cin, cout] = attrs.filterShape;
  const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const xData = backend.readSync(x.dataId) as Float32Array;
  const rows = outHeight * outWidth * batchSize;
  const columns = new Float32Array(kh * kw * cin * rows);
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      for (let ci = 0; ci < cin; ci++) {
        let out = ((ky * kw + kx) * cin + ci) * rows;
        for (let n = 0; n < batchSize; n++) {
          for (let oy = 0; oy < outHeight; oy++) {
            const iy = oy * strideHeight - top + ky;
            if (iy < 0 || iy >= inHeight) {
              out += outWidth; // zero padding: the row stays 0
              continue;
            }
            const rowBase = (n * inHeight + iy) * inWidth;
            for (let ox = 0; ox < outWidth; ox++, out++) {
              const ix = ox * strideWidth - left + kx;
              if (ix >= 0 && ix < inWidth) columns[out] = xData[(rowBase + ix) * cin + ci]!;
            }
          }
        }
      }
    }
  }
  const columnsId = backend.write(columns, [1, kh * kw * cin, rows], 'float32');
  const matMul = tf.getKernel('BatchMatMul', tf.getBackend())!;
  try {
    const product = matMul.kernelFunc({
      inputs: {
        a: { dataId: columnsId, shape: [1, kh * kw * cin, rows], dtype: 'float32' },
        b: { dataId: dy.dataId, shape: [1, rows, cout], dtype: 'float32' },
      },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as tf.TensorInfo;
    return { dataId: product.dataId, shape: attrs.filterShape, dtype: 'float32' };
  } finally {
    backend.disposeData(columnsId);
  }
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: tf.KernelBackend; attrs?: tf.NamedAttrMap };
type Kernel = (args: KernelArgs) => tf.TensorInfo;

function kernelOf(name: string, backendName: string): Kernel {
  const config = tf.getKernel(name, backendName);
  if (!config) throw new Error(`the ${backendName} backend has no ${name} kernel`);
  return config.kernelFunc as unknown as Kernel;
}

/**
 * BatchMatMul that transposes operands first: wasm runs transposed products (every matMul gradient) in a generic
 * loop several times slower than the untransposed XNNPACK path; an explicit Transpose is cheap.
 */
function untransposedBatchMatMul(original: Kernel, transpose: Kernel): Kernel {
  return (args) => {
    const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return original(args);
    const backend = args.backend as WasmLikeBackend;
    const owned: tf.TensorInfo[] = [];
    const swap = (t: tf.TensorInfo, flag: boolean) => {
      if (!flag) return t;
      const perm = t.shape.map((_, i) => i);
      const last = perm.length - 1;
      [perm[last - 1], perm[last]] = [perm[last]!, perm[last - 1]!];
      const out = transpose({ inputs: { x: t }, backend, attrs: { perm } });
      owned.push(out);
      return out;
    };
    try {
      return original({
        inputs: { a: swap(args.inputs['a']!, transposeA), b: swap(args.inputs['b']!, transposeB) },
        backend,
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of owned) backend.disposeData(t.dataId);
    }
  };
}

/**
 * dx of a conv as a stride-1 'valid' Conv2D (XNNPACK) of the zero-dilated, padded dy with the filter rotated by
 * 180 degrees and its in/out channels swapped; wasm's own Conv2DBackpropInput is a naive loop.
 */
function conv2dBackpropInputViaConv(conv2d: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as WasmLikeBackend;
    const dy = args.inputs['dy']!;
    const filter = args.inputs['filter']!;
    const attrs = (args.attrs ?? {}) as unknown as ConvGradAttrs & {
      inputShape: [number, number, number, number];
    };
    if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropInput (wasm): only NHWC is supported');
    const [kh, kw, cin, cout] = filter.shape as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape,
      [kh, kw, cin, cout],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const paddedH = inHeight + kh - 1;
    const paddedW = inWidth + kw - 1;
    const dyData = backend.readSync(dy.dataId) as Float32Array;
    const padded = new Float32Array(batchSize * paddedH * paddedW * cout);
    for (let n = 0; n < batchSize; n++) {
      for (let oy = 0; oy < outHeight; oy++) {
        const py = top + oy * strideHeight;
        if (py < 0 || py >= paddedH) continue;
        for (let ox = 0; ox < outWidth; ox++) {
          const px = left + ox * strideWidth;
          if (px < 0 || px >= paddedW) continue;
          const from = ((n * outHeight + oy) * outWidth + ox) * cout;
          padded.set(dyData.subarray(from, from + cout), ((n * paddedH + py) * paddedW + px) * cout);
        }
      }
    }
    const w = backend.readSync(filter.dataId) as Float32Array;
    const rotated = new Float32Array(w.length);
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let ci = 0; ci < cin; ci++)
          for (let co = 0; co < cout; co++)
            rotated[((y * kw + x) * cout + co) * cin + ci] =
              w[(((kh - 1 - y) * kw + (kw - 1 - x)) * cin + ci) * cout + co]!;
    const paddedId = backend.write(padded, [batchSize, paddedH, paddedW, cout], 'float32');
    const rotatedId = backend.write(rotated, [kh, kw, cout, cin], 'float32');
    try {
      return conv2d({
        inputs: {
          x: { dataId: paddedId, shape: [batchSize, paddedH, paddedW, cout], dtype: 'float32' },
          filter: { dataId: rotatedId, shape: [kh, kw, cout, cin], dtype: 'float32' },
        },
        backend,
        attrs: { strides: 1, pad: 'valid', dataFormat: 'NHWC', dilations: 1 },
      });
    } finally {
      backend.disposeData(paddedId);
      backend.disposeData(rotatedId);
    }
  };
}

let fastKernelsOn = false;

/**
 * Registers the gradient kernels the active backend lacks (wasm: Conv2DBackpropFilter) and, on wasm, faster
 * training versions of BatchMatMul (transposed operands) and Conv2DBackpropInput. Same results, other route.
 * Call after `initBackend`; idempotent.
 */
export function registerTrainingKernels(): string[] {
  const backendName = tf.getBackend();
  const added: string[] = [];
  attentionStrategy.batchedOnWasm = true;
  if (!tf.getKernel('Conv2DBackpropFilter', backendName)) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName,
      kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
    });
    added.push('Conv2DBackpropFilter');
  }
  if (backendName === 'wasm' && !fastKernelsOn) {
    fastKernelsOn = true;
    const matMul = kernelOf('BatchMatMul', backendName);
    const transpose = kernelOf('Transpose', backendName);
    const conv2d = kernelOf('Conv2D', backendName);
    tf.unregisterKernel('BatchMatMul', backendName);
    tf.registerKernel({
      kernelName: 'BatchMatMul',
      backendName,
      kernelFunc: untransposedBatchMatMul(matMul, transpose) as unknown as tf.KernelFunc,
    });
    tf.unregisterKernel('Conv2DBackpropInput', backendName);
    tf.registerKernel({
      kernelName: 'Conv2DBackpropInput',
      backendName,
      kernelFunc: conv2dBackpropInputViaConv(conv2d) as unknown as tf.KernelFunc,
    });
    added.push('BatchMatMul', 'Conv2DBackpropInput');
  }
  return added;
}
