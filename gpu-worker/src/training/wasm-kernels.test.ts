import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder } from '../models/vae.ts';
import { makeTrainable } from './checkpoint.ts';
import { initControlNetFromUNet } from './controlnet-init.ts';
import { initParams } from './init.ts';
import { TEST_CONTROLNET_CONFIG, TEST_UNET_CONFIG } from './tiny-config.ts';
import { registerTrainingKernels } from './wasm-kernels.ts';

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

/** Directional check: <grad, d> against (L(p + h d) - L(p - h d)) / 2h for a random direction d. */
async function directionalError(
  loss: () => tf.Scalar,
  variable: tf.Variable,
  step: number,
  seed: number,
): Promise<{ analytic: number; numeric: number }> {
  const { grads, value } = tf.variableGrads(loss, [variable]);
  value.dispose();
  const direction = seeded(variable.shape, seed);
  const analytic = (await tf.sum(grads[variable.name]!.mul(direction)).data())[0]!;
  const original = variable.clone();
  variable.assign(original.add(direction.mul(step)));
  const plus = (await tf.tidy(loss).data())[0]!;
  variable.assign(original.sub(direction.mul(step)));
  const minus = (await tf.tidy(loss).data())[0]!;
  variable.assign(original);
  tf.dispose([original, direction, ...Object.values(grads)]);
  return { analytic, numeric: (plus - minus) / (2 * step) };
}

describe('training kernels on wasm', () => {
  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    registerTrainingKernels();
  });

  it('lacked Conv2DBackpropFilter and now has it', () => {
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  // The loss is linear in the filter and in x, so central differences are exact up to float32 rounding.
  const cases = [
    { name: '3x3 stride 1 pad 1', kernel: 3, stride: 1, pad: 1, size: 7 },
    { name: '3x3 stride 2 pad 1', kernel: 3, stride: 2, pad: 1, size: 8 },
    { name: '3x3 stride 2 pad 1, odd size', kernel: 3, stride: 2, pad: 1, size: 7 },
    { name: '1x1', kernel: 1, stride: 1, pad: 0, size: 5 },
  ];
  for (const c of cases) {
    it(`conv filter and input gradients match numerical gradients (${c.name})`, async () => {
      const x = tf.variable(seeded([2, c.size, c.size, 3], 1));
      const filter = tf.variable(seeded([c.kernel, c.kernel, 3, 4], 2));
      const bias = tf.variable(seeded([4], 3));
      const forward = () =>
        tf.fused.conv2d({
          x: x as unknown as tf.Tensor4D,
          filter: filter as unknown as tf.Tensor4D,
          strides: c.stride,
          pad: [
            [0, 0],
            [c.pad, c.pad],
            [c.pad, c.pad],
            [0, 0],
          ],
          bias,
        });
      const out = forward();
      const weights = seeded(out.shape, 4);
      out.dispose();
      const loss = () => tf.sum(forward().mul(weights)) as tf.Scalar;
      const { grads } = tf.variableGrads(loss, [x, filter, bias]);
      // Element-wise finite differences for every filter entry.
      const analytic = await grads[filter.name]!.data();
      const values = await filter.data();
      for (let i = 0; i < values.length; i++) {
        const plus = values.slice();
        plus[i] = values[i]! + 0.5;
        filter.assign(tf.tensor(plus, filter.shape));
        const up = (await tf.tidy(loss).data())[0]!;
        plus[i] = values[i]! - 0.5;
        filter.assign(tf.tensor(plus, filter.shape));
        const down = (await tf.tidy(loss).data())[0]!;
        expect(analytic[i]!).toBeCloseTo(up - down, 2);
      }
      filter.assign(tf.tensor(values, filter.shape));
      const dx = await directionalError(loss, x, 0.5, 5);
      expect(dx.analytic).toBeCloseTo(dx.numeric, 2);
      tf.dispose([x, filter, bias, weights, ...Object.values(grads)]);
    });
  }

  it('transposed matMul products equal the plain products', async () => {
    const a = seeded([3, 5, 4], 6);
    const b = seeded([3, 6, 5], 7);
    const viaKernel = tf.matMul(a, b, true, true);
    const explicit = tf.matMul(a.transpose([0, 2, 1]), b.transpose([0, 2, 1]));
    expect(Array.from(await viaKernel.data())).toEqual(Array.from(await explicit.data()));
    tf.dispose([a, b, viaKernel, explicit]);
  });

  it('backpropagates through every layer kind of the UNet, ControlNet and VAE decoder', async () => {
    const unet = new UNetModel(TEST_UNET_CONFIG);
    initParams(unet.params, 11);
    const net = new ControlNetModel(TEST_CONTROLNET_CONFIG);
    initControlNetFromUNet(net, unet, { seed: 12, joinInit: 'gaussian' });
    const vae = new VaeDecoder({
      embed_dim: 4,
      z_channels: 4,
      in_channels: 3,
      out_ch: 3,
      ch: 32,
      ch_mult: [1, 1],
      num_res_blocks: 0,
      double_z: true,
      scale_factor: 1,
    });
    initParams(vae.params, 13);
    const unetVars = makeTrainable(unet.params);
    const netVars = makeTrainable(net.params);
    const vaeVars = makeTrainable(vae.params);
    const x = seeded([2, 2, 2, 4], 20) as tf.Tensor4D;
    const context = seeded([2, 5, TEST_UNET_CONFIG.context_dim], 21) as tf.Tensor3D;
    const hint = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 22) as tf.Tensor4D;
    const loss = () =>
      tf.tidy(() => {
        const controls = net.forward(x, [10, 900], context, net.encodeHint(hint));
        const eps = unet.forward(x, [10, 900], context, controls);
        return tf.mean(vae.forward(eps).square()) as tf.Scalar;
      });
    const checked = [
      unetVars.get('input_blocks.1.0.in_layers.0.weight')!, // GroupNorm
      unetVars.get('input_blocks.3.1.transformer_blocks.0.attn1.to_q.weight')!, // self-attention
      unetVars.get('middle_block.1.transformer_blocks.0.attn2.to_k.weight')!, // cross-attention
      unetVars.get('output_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight')!, // GEGLU
      unetVars.get('output_blocks.1.2.conv.weight')!, // Upsample
      unetVars.get('input_blocks.2.0.op.weight')!, // Downsample (stride 2)
      unetVars.get('time_embed.0.weight')!,
      netVars.get('input_hint_block.4.weight')!, // hint encoder, stride 2
      netVars.get('zero_convs.1.0.weight')!,
      vaeVars.get('decoder.mid.attn_1.q.weight')!, // VAE attention
      vaeVars.get('decoder.up.1.upsample.conv.weight')!,
    ];
    for (const [i, variable] of checked.entries()) {
      // float32 central differences: large steps suffer curvature, small ones cancellation. The analytic
      // gradient must agree with the difference at one of two steps scaled to the parameter's own size.
      const rms = Math.sqrt((await tf.mean(variable.square()).data())[0]!) || 1;
      const errors: number[] = [];
      for (const relative of [3e-4, 1e-2]) {
        const { analytic, numeric } = await directionalError(loss, variable, relative * rms, 100 + i);
        errors.push(Math.abs(analytic - numeric) / (Math.abs(numeric) + 1e-3));
      }
      expect(Math.min(...errors), variable.name).toBeLessThan(0.05);
    }
    tf.dispose([x, context, hint]);
    unet.dispose();
    net.dispose();
    vae.dispose();
  });
});
