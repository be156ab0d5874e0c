import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import type { ControlNetConfig } from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { originalLayout } from './keymap.ts';
import { loadParams, WeightLoadError } from './load.ts';
import { encodeSafetensors, SafetensorsFile, type SafetensorsTensorInput } from './safetensors.ts';

/** A ControlNet small enough to fill with zeros in a test. */
const tinyConfig: ControlNetConfig = {
  in_channels: 4,
  hint_channels: 3,
  model_channels: 32,
  attention_resolutions: [1],
  num_res_blocks: 1,
  channel_mult: [1],
  num_heads: 1,
  transformer_depth: 1,
  context_dim: 8,
  use_linear_in_transformer: false,
};

function zeroFile(model: ControlNetModel, edit: (tensors: Record<string, SafetensorsTensorInput>) => void) {
  const tensors: Record<string, SafetensorsTensorInput> = {};
  for (const [name, shape] of model.params.specs) {
    tensors[`control_model.${name}`] = {
      dtype: 'F16',
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5),
    };
  }
  edit(tensors);
  return SafetensorsFile.fromBytes(encodeSafetensors(tensors));
}

describe('loadParams', () => {
  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
  });

  it('reports every missing, unexpected and mis-shaped key by name and loads nothing', async () => {
    const model = new ControlNetModel(tinyConfig);
    const file = zeroFile(model, (t) => {
      delete t['control_model.zero_convs.1.0.bias'];
      t['control_model.extra.weight'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
      t['control_model.input_hint_block.0.weight'] = {
        dtype: 'F32',
        shape: [16, 3, 1, 1],
        data: new Float32Array(48),
      };
    });
    const before = tf.memory().numTensors;
    const error = await loadParams(model.params, file, originalLayout('controlnet')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WeightLoadError);
    const { report, code, message } = error as WeightLoadError;
    expect(code).toBe('weights_mismatch');
    expect(report.missing).toEqual(['zero_convs.1.0.bias']);
    expect(report.unexpected).toEqual(['control_model.extra.weight']);
    expect(report.misshaped).toEqual([
      {
        name: 'input_hint_block.0.weight',
        fileKey: 'control_model.input_hint_block.0.weight',
        expected: [16, 3, 3, 3],
        actual: [16, 3, 1, 1],
      },
    ]);
    expect(message).toContain('zero_convs.1.0.bias');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('loads F16 weights into tfjs layout (OIHW -> HWIO, [out,in] -> [in,out])', async () => {
    const model = new ControlNetModel(tinyConfig);
    const file = zeroFile(model, (t) => {
      const data = new Float32Array(16 * 3 * 3 * 3).map((_, i) => i / 4);
      t['control_model.input_hint_block.0.weight'] = { dtype: 'F16', shape: [16, 3, 3, 3], data };
      t['control_model.time_embed.0.weight'] = {
        dtype: 'F32',
        shape: [128, 32],
        data: new Float32Array(128 * 32).map((_, i) => i),
      };
    });
    const report = await loadParams(model.params, file, originalLayout('controlnet'));
    expect(report).toEqual({ missing: [], unexpected: [], misshaped: [] });
    const conv = model.params.get('input_hint_block.0.weight');
    expect(conv.shape).toEqual([3, 3, 3, 16]);
    // HWIO [y=1, x=2, i=1, o=5] is OIHW [o=5, i=1, y=1, x=2] = ((5*3+1)*3+1)*3+2 = 149 -> 149/4.
    expect(((await conv.array()) as number[][][][])[1]![2]![1]![5]).toBe(149 / 4);
    const linear = model.params.get('time_embed.0.weight');
    expect(linear.shape).toEqual([32, 128]);
    expect(((await linear.array()) as number[][])[3]![7]).toBe(7 * 32 + 3);
    model.dispose();
  });
});
