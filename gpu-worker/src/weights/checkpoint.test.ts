import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import type { ControlNetConfig } from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { CheckpointError, loadControlNet, loadVaeDecoder } from './checkpoint.ts';
import { WeightLoadError } from './load.ts';
import { encodeSafetensors, type SafetensorsTensorInput } from './safetensors.ts';

const tinyConfig: ControlNetConfig = {
  in_channels: 4,
  hint_channels: 3,
  model_channels: 32,
  attention_resolutions: [],
  num_res_blocks: 1,
  channel_mult: [1],
  num_heads: 1,
  transformer_depth: 1,
  context_dim: 8,
  use_linear_in_transformer: false,
};

function tinyFile(prefix: string): Uint8Array {
  const tensors: Record<string, SafetensorsTensorInput> = {};
  const model = new ControlNetModel(tinyConfig);
  for (const [name, shape] of model.params.specs) {
    tensors[prefix + name] = {
      dtype: 'F16',
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    };
  }
  return encodeSafetensors(tensors);
}

describe('checkpoint loading by path', () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
    dir = await mkdtemp(join(tmpdir(), 'contour-ckpt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads ControlNets with the control_model. prefix and with bare keys', async () => {
    for (const prefix of ['control_model.', '']) {
      const path = join(dir, `cn-${prefix || 'bare'}.safetensors`);
      await writeFile(path, tinyFile(prefix));
      const model = await loadControlNet(path, tinyConfig);
      expect(model.params.complete).toBe(true);
      model.dispose();
    }
  });

  it('names the problem for unknown layouts, wrong configs and missing paths', async () => {
    const path = join(dir, 'other.safetensors');
    await writeFile(path, encodeSafetensors({ x: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
    await expect(loadControlNet(path, tinyConfig)).rejects.toMatchObject({
      code: 'checkpoint_layout_unknown',
    });
    await expect(loadControlNet(join(dir, 'none'))).rejects.toBeInstanceOf(CheckpointError);
    // The tiny ControlNet file read with the SD1.5 config: every mismatch is reported.
    const tiny = join(dir, 'tiny.safetensors');
    await writeFile(tiny, tinyFile('control_model.'));
    const error = (await loadControlNet(tiny).catch((e: unknown) => e)) as WeightLoadError;
    expect(error).toBeInstanceOf(WeightLoadError);
    expect(error.report.missing).toContain('input_blocks.4.0.in_layers.0.weight');
    expect(error.report.misshaped.map((k) => k.name)).toContain('input_blocks.1.0.in_layers.2.weight');
  });

  it('loads the VAE decoder out of a full original checkpoint, ignoring the other components', async () => {
    const refA = fileURLToPath(
      new URL('../../test/fixtures/parity/refA.weights.safetensors', import.meta.url),
    );
    const decoder = await loadVaeDecoder(refA, {
      embed_dim: 4,
      z_channels: 4,
      in_channels: 3,
      out_ch: 3,
      ch: 32,
      ch_mult: [1, 2, 2, 2],
      num_res_blocks: 1,
      double_z: true,
      scale_factor: 0.18215,
    });
    expect(decoder.params.complete).toBe(true);
    decoder.dispose();
  });
});
