import * as tf from '@tensorflow/tfjs';
import type { ControlNetHead } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import { gaussianNoise } from '../pipelines/noise.ts';
import { initParams } from './init.ts';

/** How the layers joining the ControlNet to the locked UNet start (the paper's ablation). */
export type JoinInit = 'zero' | 'gaussian';

/** The zero-initialised layers of cldm's ControlNet: 13 output convs and the last hint-encoder conv. */
export function isZeroModule(name: string): boolean {
  return (
    name.startsWith('zero_convs.') ||
    name.startsWith('middle_block_out.') ||
    name.startsWith('input_hint_block.14.')
  );
}

/**
 * Initialises a ControlNet as cldm does before training: the trainable copy (time_embed, input_blocks,
 * middle_block) copied from the base UNet, the hint encoder random, and the zero modules zero — or, for the
 * ablation, N(0, std^2) weights (std default 1/sqrt(fan_in), a standard conv init).
 */
export function initControlNetFromUNet(
  net: ControlNetHead,
  unet: UNetModel,
  options: { seed: number; joinInit?: JoinInit; gaussianStd?: number },
): { copied: number } {
  const joinInit = options.joinInit ?? 'zero';
  initParams(net.params, options.seed, isZeroModule);
  let copied = 0;
  for (const [name, shape] of net.params.specs) {
    const baseShape = unet.params.specs.get(name);
    if (baseShape && baseShape.join() === shape.join()) {
      net.params.setTensor(name, unet.params.get(name).clone());
      copied++;
    } else if (joinInit === 'gaussian' && isZeroModule(name) && name.endsWith('.weight')) {
      const count = shape.reduce((a, b) => a * b, 1);
      const values = gaussianNoise(options.seed + 1, copied + count, count);
      const std = options.gaussianStd ?? 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
      for (let i = 0; i < count; i++) values[i] = values[i]! * std;
      net.params.setFromTorch(name, values);
    }
  }
  return { copied };
}

/** Whether every zero module of a ControlNet is exactly zero (the invariant that leaves the base unchanged). */
export function zeroModulesAreZero(net: ControlNetHead): boolean {
  for (const [name] of net.params.specs) {
    if (!isZeroModule(name)) continue;
    const max = tf.tidy(() => net.params.get(name).abs().max().dataSync()[0]!);
    if (max !== 0) return false;
  }
  return true;
}
