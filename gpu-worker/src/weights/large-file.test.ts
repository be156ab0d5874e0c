import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWeightFile } from './open.ts';

const dir = await mkdtemp(join(tmpdir(), 'contour-large-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('weight files over 4 GB', () => {
  it('reads a tensor stored past 4 GiB by offset, without buffering the file (a sparse 4.5 GB safetensors)', async () => {
    // Header: a small tensor, a 4.5 GB byte tensor left as a hole, then the tensor we read back.
    const padding = 4_500_000_000;
    const header: Record<string, unknown> = {
      head: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      padding: { dtype: 'U8', shape: [padding], data_offsets: [8, 8 + padding] },
      tail: { dtype: 'F16', shape: [2, 2], data_offsets: [8 + padding, 16 + padding] },
    };
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    const path = join(dir, 'big.safetensors');
    const file = await open(path, 'w');
    await file.write(prefix);
    await file.write(json);
    await file.write(new Uint8Array(new Float32Array([1.5, -2]).buffer));
    const dataStart = 8 + json.length;
    // 1, -2, 0.5, 65504 in float16, written after the hole.
    await file.write(
      new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]).buffer),
      0,
      8,
      dataStart + 8 + padding,
    );
    await file.close();
    expect((await stat(path)).size).toBeGreaterThan(2 ** 32);

    const before = process.memoryUsage().rss;
    const weights = await openWeightFile(path);
    try {
      expect(weights.tensors.get('tail')?.shape).toEqual([2, 2]);
      expect([...(await weights.readFloat32('tail'))]).toEqual([1, -2, 0.5, 65504]);
      expect([...(await weights.readFloat32('head'))]).toEqual([1.5, -2]);
    } finally {
      await weights.close();
    }
    // Nothing near the file's size was read into memory.
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
  });
});
