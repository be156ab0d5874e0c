import { open as openFile } from 'node:fs/promises';
import type { WeightFile } from './load.ts';
import { SafetensorsFile } from './safetensors.ts';
import { TorchCheckpointFile } from './torch-checkpoint.ts';

/** ZIP local-header magic: `torch.save`'s format since PyTorch 1.6 (`.pth`, `.pt`, `.ckpt`). */
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** A pickle's PROTO opcode: the legacy (pre-1.6) `torch.save` format, which TorchCheckpointFile reads too. */
const PICKLE_PROTO = 0x80;

/** Opens a weight file by its content, not its name: safetensors, or a PyTorch checkpoint read without pickle code. */
export async function openWeightFile(path: string): Promise<WeightFile> {
  const handle = await openFile(path, 'r');
  const head = new Uint8Array(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  const isZip = ZIP_MAGIC.every((byte, i) => head[i] === byte);
  if (isZip || head[0] === PICKLE_PROTO) return TorchCheckpointFile.open(path);
  return SafetensorsFile.open(path);
}
