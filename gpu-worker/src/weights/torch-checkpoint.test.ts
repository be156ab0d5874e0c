import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath, referenceConfig } from '../../test/parity-helpers.ts';
import { loadControlNet } from './checkpoint.ts';
import { openWeightFile } from './open.ts';
import { SafetensorsFile } from './safetensors.ts';
import { TorchCheckpointError, TorchCheckpointFile } from './torch-checkpoint.ts';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/torch');
const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as {
  values: Record<string, number[]>;
  shapes: Record<string, number[]>;
};

describe('TorchCheckpointFile (torch.save ZIP checkpoints, made by PyTorch 1.13)', () => {
  it('reads every float tensor of a state dict as torch has it, whatever its dtype, strides or offset', async () => {
    const file = await TorchCheckpointFile.open(join(FIXTURES, 'state.pth'));
    try {
      expect([...file.tensors.keys()].sort()).toEqual(Object.keys(expected.shapes).sort());
      for (const [name, shape] of Object.entries(expected.shapes))
        expect(file.tensors.get(name)?.shape).toEqual(shape);
      expect(file.tensors.get('half')?.dtype).toBe('F16');
      expect(file.tensors.get('bf16')?.dtype).toBe('BF16');
      for (const [name, values] of Object.entries(expected.values)) {
        const got = await file.readFloat32(name);
        expect(got.length, name).toBe(values.length);
        for (let i = 0; i < values.length; i++) expect(got[i], `${name}[${i}]`).toBe(Math.fround(values[i]!));
      }
      await expect(file.readFloat32('steps')).rejects.toThrow(/I64, not a float type/);
    } finally {
      await file.close();
    }
  });

  it('reads the state_dict of a Lightning .ckpt and ignores its other entries', async () => {
    const file = await TorchCheckpointFile.open(join(FIXTURES, 'lightning.ckpt'));
    try {
      expect(file.tensors.has('0.weight')).toBe(true);
      expect(file.tensors.has('global_step')).toBe(false);
      expect([...(await file.readFloat32('0.bias'))]).toEqual(expected.values['0.bias']!.map(Math.fround));
    } finally {
      await file.close();
    }
  });

  it('refuses a pickle that calls anything else, naming the global, without running it', async () => {
    const error = await TorchCheckpointFile.open(join(FIXTURES, 'evil.pth')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TorchCheckpointError);
    expect(error).toMatchObject({ code: 'torch_pickle_refused' });
    expect((error as Error).message).toMatch(/refused pickle global posix\.system/);
    expect((error as Error).message).toContain('use evil.safetensors instead');
    await expect(stat('/tmp/contour-pickle-pwned')).rejects.toThrow();
  });

  it('refuses the legacy pre-1.6 format and files that are not checkpoints, naming the safetensors file', async () => {
    for (const name of ['legacy.pth', 'make.py']) {
      const error = await TorchCheckpointFile.open(join(FIXTURES, name)).catch((e: unknown) => e);
      expect(error, name).toMatchObject({ code: 'torch_format_unsupported' });
      expect((error as Error).message, name).toMatch(/\.safetensors instead/);
    }
  });

  it('serves a ControlNet 1.1-style .pth to the loader tensor for tensor as the safetensors it was made from', async () => {
    const pth = await openWeightFile(join(FIXTURES, 'refC_control.pth'));
    const twin = await SafetensorsFile.open(fixturePath('parity/refC_f16_guess.weights.safetensors'));
    try {
      expect(pth).toBeInstanceOf(TorchCheckpointFile);
      const keys = [...twin.tensors.keys()].filter((key) => key.startsWith('control_model.'));
      expect([...pth.tensors.keys()].sort()).toEqual(keys.sort());
      for (const key of keys) {
        expect(pth.tensors.get(key)?.shape, key).toEqual(twin.tensors.get(key)?.shape);
        expect(await pth.readFloat32(key), key).toEqual(await twin.readFloat32(key));
      }
      const model = await loadControlNet(
        join(FIXTURES, 'refC_control.pth'),
        referenceConfig(twin.metadata).controlnet,
      );
      model.dispose();
    } finally {
      await pth.close();
      await twin.close();
    }
  });
});
