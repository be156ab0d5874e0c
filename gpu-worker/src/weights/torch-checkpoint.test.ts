import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath, referenceConfig } from '../../test/parity-helpers.ts';
import { loadControlNet } from './checkpoint.ts';
import { openWeightFile } from './open.ts';
import { SafetensorsFile } from './safetensors.ts';
import { TorchCheckpointError, TorchCheckpointFile } from './torch-checkpoint.ts';
import { readPickle } from './torch-pickle.ts';

const FIXTURES = join(import.meta.dirname, '../../test/fixtures/torch');
const expected = JSON.parse(await readFile(join(FIXTURES, 'expected.json'), 'utf8')) as {
  values: Record<string, number[]>;
  shapes: Record<string, number[]>;
  legacy_view: Record<string, number[]>;
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

  it('refuses files that are not checkpoints, naming the safetensors file', async () => {
    const error = await TorchCheckpointFile.open(join(FIXTURES, 'make.py')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'torch_format_unsupported' });
    expect((error as Error).message).toMatch(
      /make\.py is not a PyTorch checkpoint \(neither the ZIP format.*nor the legacy .*use make\.py\.safetensors instead/,
    );
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

describe('TorchCheckpointFile, legacy pre-1.6 format (torch.save(..., _use_new_zipfile_serialization=False))', () => {
  /** Every tensor of `a` equals `b`'s (names, shapes, dtypes and float32 values). */
  async function expectSameTensors(a: TorchCheckpointFile, b: TorchCheckpointFile) {
    expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
    for (const [name, info] of b.tensors) {
      expect(a.tensors.get(name), name).toEqual(info);
      if (info.dtype === 'I64') continue;
      expect(await a.readFloat32(name), name).toEqual(await b.readFloat32(name));
    }
  }

  it('reads the same tensors as its ZIP twin: F32, F16, BF16, F64, transposed and offset views', async () => {
    // Through openWeightFile, the loader's entry point, which picks the reader by content.
    const legacy = (await openWeightFile(join(FIXTURES, 'legacy.pth'))) as TorchCheckpointFile;
    const zip = await TorchCheckpointFile.open(join(FIXTURES, 'state.pth'));
    try {
      expect(legacy).toBeInstanceOf(TorchCheckpointFile);
      await expectSameTensors(legacy, zip);
      expect(legacy.tensors.get('half')?.dtype).toBe('F16');
      for (const [name, values] of Object.entries(expected.values))
        expect([...(await legacy.readFloat32(name))], name).toEqual(values.map(Math.fround));
      await expect(legacy.readFloat32('steps')).rejects.toThrow(/I64, not a float type/);
    } finally {
      await legacy.close();
      await zip.close();
    }
  });

  it('reads the state_dict of a legacy Lightning-style .ckpt like its ZIP twin', async () => {
    const legacy = await TorchCheckpointFile.open(join(FIXTURES, 'legacy_lightning.ckpt'));
    const zip = await TorchCheckpointFile.open(join(FIXTURES, 'lightning.ckpt'));
    try {
      expect(legacy.tensors.has('global_step')).toBe(false);
      await expectSameTensors(legacy, zip);
    } finally {
      await legacy.close();
      await zip.close();
    }
  });

  it('reads tensors of storage views (view_metadata of PyTorch < 0.4 files) as torch.load does', async () => {
    const file = await TorchCheckpointFile.open(join(FIXTURES, 'legacy_view.pth'));
    try {
      expect(file.tensors.get('viewed')?.shape).toEqual([2, 2]);
      for (const [name, values] of Object.entries(expected.legacy_view))
        expect([...(await file.readFloat32(name))], name).toEqual(values.map(Math.fround));
    } finally {
      await file.close();
    }
  });

  it('refuses a legacy pickle that calls os.system, naming the global, without running it', async () => {
    const error = await TorchCheckpointFile.open(join(FIXTURES, 'evil_legacy.pth')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TorchCheckpointError);
    expect(error).toMatchObject({ code: 'torch_pickle_refused' });
    expect((error as Error).message).toMatch(/refused pickle global posix\.system/);
    expect((error as Error).message).toContain('use evil_legacy.safetensors instead');
    await expect(stat('/tmp/contour-pickle-pwned')).rejects.toThrow();
  });

  it('refuses damaged legacy files with the reason: truncated data, storage sizes that disagree', async () => {
    const bytes = new Uint8Array(await readFile(join(FIXTURES, 'legacy.pth')));
    const dir = await mkdtemp(join(tmpdir(), 'contour-legacy-'));
    const cases: [string, Uint8Array, RegExp][] = [
      ['cut.pth', bytes.subarray(0, bytes.length - 3), /runs past the end of the file/],
      ['head.pth', bytes.subarray(0, 200), /ends inside its pickles/],
    ];
    // The first storage's element count (right after the key list) set to one more than its description.
    const keysEnd = findKeyListEnd(bytes);
    const wrongCount = bytes.slice();
    const dv = new DataView(wrongCount.buffer);
    dv.setBigInt64(keysEnd, dv.getBigInt64(keysEnd, true) + 1n, true);
    cases.push(['count.pth', wrongCount, /holds \d+ elements, its description says \d+/]);
    for (const [name, data, message] of cases) {
      await writeFile(join(dir, name), data);
      const error = await TorchCheckpointFile.open(join(dir, name)).catch((e: unknown) => e);
      expect(error, name).toMatchObject({ code: 'torch_format_unsupported' });
      expect((error as Error).message, name).toMatch(message);
      expect((error as Error).message, name).toMatch(/damaged legacy PyTorch checkpoint/);
    }
  });

  it('reads a legacy file whose pickle is larger than the first head read (the head grows)', async () => {
    // Real annotator files keep their pickles in the first few KB; this pads the object pickle past 1 MiB.
    const dir = await mkdtemp(join(tmpdir(), 'contour-legacy-'));
    const path = join(dir, 'padded.pth');
    await writeFile(path, paddedLegacy(new Uint8Array(await readFile(join(FIXTURES, 'legacy.pth')))));
    const padded = await TorchCheckpointFile.open(path);
    const zip = await TorchCheckpointFile.open(join(FIXTURES, 'state.pth'));
    try {
      await expectSameTensors(padded, zip);
    } finally {
      await padded.close();
      await zip.close();
    }
  });
});

/** Position right after the storage key list (the 5th pickle) of a legacy file, found by its STOP opcodes. */
function findKeyListEnd(bytes: Uint8Array): number {
  let at = 0;
  for (let i = 0; i < 5; i++) at = readPickle(bytes, at).end;
  return at;
}

/**
 * The legacy file with a 1.3 MB value added to its sys_info pickle (of which only `little_endian` is looked at), so
 * the pickles at its head no longer fit in the first 1 MiB read.
 */
function paddedLegacy(bytes: Uint8Array): Uint8Array {
  const magicEnd = readPickle(bytes, 0).end;
  const protocolEnd = readPickle(bytes, magicEnd).end;
  const sysInfoEnd = readPickle(bytes, protocolEnd).end;
  const pad = 1_300_000;
  // PROTO 2, EMPTY_DICT, BINUNICODE 'pad', BINBYTES <pad>, SETITEM, STOP
  const head = [0x80, 0x02, 0x7d, 0x58, 3, 0, 0, 0, 0x70, 0x61, 0x64, 0x42];
  const size = [pad & 0xff, (pad >> 8) & 0xff, (pad >> 16) & 0xff, (pad >> 24) & 0xff];
  const sysInfo = new Uint8Array(head.length + 4 + pad + 2);
  sysInfo.set([...head, ...size]);
  sysInfo.set([0x73, 0x2e], head.length + 4 + pad);
  const out = new Uint8Array(bytes.length - (sysInfoEnd - protocolEnd) + sysInfo.length);
  out.set(bytes.subarray(0, protocolEnd));
  out.set(sysInfo, protocolEnd);
  out.set(bytes.subarray(sysInfoEnd), protocolEnd + sysInfo.length);
  return out;
}
