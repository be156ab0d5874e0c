import type * as tf from '@tensorflow/tfjs';
import type { Ops } from '../../engine/ops.ts';
import type { ParamStore } from '../../models/params.ts';

/** Declares a Conv2d's weight (and bias) under `name` in PyTorch's [out, in, k, k]. */
export function declareConv(
  params: ParamStore,
  name: string,
  out: number,
  inp: number,
  k: number,
  bias = true,
): void {
  params.declare(`${name}.weight`, [out, inp, k, k]);
  if (bias) params.declare(`${name}.bias`, [out]);
}

/** A declared conv's bias, or undefined when it was declared without one. */
export function biasOf(params: ParamStore, name: string): tf.Tensor | undefined {
  return params.specs.has(`${name}.bias`) ? params.get(`${name}.bias`) : undefined;
}

/** A declared Conv2d applied with PyTorch options. */
export function conv<T>(
  ops: Ops<T>,
  params: ParamStore,
  name: string,
  x: T,
  options: { stride?: number; pad?: number | [number, number, number, number]; groups?: number } = {},
): T {
  return ops.conv(x, params.get(`${name}.weight`), biasOf(params, name), options);
}

/** Declares MiDaS's FeatureFusionBlock_custom (two ResidualConvUnit_custom without BN, then out_conv 1x1). */
export function declareFusion(params: ParamStore, name: string, features: number, outFeatures: number): void {
  for (const unit of ['resConfUnit1', 'resConfUnit2'])
    for (const c of ['conv1', 'conv2']) declareConv(params, `${name}.${unit}.${c}`, features, features, 3);
  declareConv(params, `${name}.out_conv`, outFeatures, features, 1);
}

/** ResidualConvUnit_custom (bn=False): conv2(relu(conv1(relu(x)))) + x. */
function residualUnit<T>(ops: Ops<T>, params: ParamStore, name: string, x: T): T {
  let y = conv(ops, params, `${name}.conv1`, ops.relu(x), { pad: 1 });
  y = conv(ops, params, `${name}.conv2`, ops.relu(y), { pad: 1 });
  return ops.add(y, x);
}

/**
 * FeatureFusionBlock_custom: [skip + rcu1(skipped)] -> rcu2 -> x2 bilinear (align_corners=True in both MiDaS
 * models here) -> out_conv.
 */
export function fusion<T>(ops: Ops<T>, params: ParamStore, name: string, x: T, skip?: T): T {
  let y = x;
  if (skip !== undefined) y = ops.add(y, residualUnit(ops, params, `${name}.resConfUnit1`, skip));
  y = residualUnit(ops, params, `${name}.resConfUnit2`, y);
  const [, h, w] = ops.imageShape(y);
  y = ops.resize(y, 2 * h, 2 * w, 'bilinear', true);
  return conv(ops, params, `${name}.out_conv`, y);
}

/**
 * The depth head (scratch.output_conv): conv3x3 -> x2 bilinear -> conv3x3 -> ReLU -> conv1x1 -> ReLU
 * (non_negative). DPT upsamples with align_corners=True, MidasNet_small with the default (False).
 */
export function depthHead<T>(ops: Ops<T>, params: ParamStore, x: T, alignCorners: boolean): T {
  let y = conv(ops, params, 'scratch.output_conv.0', x, { pad: 1 });
  const [, h, w] = ops.imageShape(y);
  y = ops.resize(y, 2 * h, 2 * w, 'bilinear', alignCorners);
  y = ops.relu(conv(ops, params, 'scratch.output_conv.2', y, { pad: 1 }));
  return ops.relu(conv(ops, params, 'scratch.output_conv.4', y));
}

/** Declares the head's three convs for `features` input channels. */
export function declareDepthHead(params: ParamStore, features: number): void {
  declareConv(params, 'scratch.output_conv.0', features / 2, features, 3);
  declareConv(params, 'scratch.output_conv.2', 32, features / 2, 3);
  declareConv(params, 'scratch.output_conv.4', 1, 32, 1);
}
