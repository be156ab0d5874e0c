import type { FileHandle } from 'node:fs/promises';

/**
 * The central directory of a ZIP archive as PyTorch's `torch.save` writes it (stored entries, ZIP64 for large
 * files). Hand-written because a weight file of several GB must be read by offsets without inflating or even
 * buffering it, and only the directory is needed: every PyTorch entry is stored uncompressed.
 */

/** One stored entry: where its bytes start in the file and how long it is. */
export interface ZipEntry {
  name: string;
  dataOffset: number;
  size: number;
}

/** Raised for archives this reader cannot use (not a ZIP, compressed entries, truncated). */
export class ZipFormatError extends Error {
  override readonly name = 'ZipFormatError';
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const ZIP64_EXTRA = 0x0001;
const MAX_COMMENT = 0xffff;
/** Central directories above this are refused: a real checkpoint's is a few hundred KB. */
const MAX_DIRECTORY_BYTES = 64 * 1024 * 1024;

async function readAt(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new ZipFormatError(`archive ends ${length - done} bytes early`);
    done += bytesRead;
  }
  return out;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function u64(dv: DataView, at: number): number {
  const value = dv.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError('ZIP64 field out of range');
  return Number(value);
}

/** Locates the central directory (offset, size, entry count), following the ZIP64 locator when present. */
async function findDirectory(
  handle: FileHandle,
  fileSize: number,
): Promise<{ offset: number; size: number; count: number }> {
  const tailLength = Math.min(fileSize, 22 + MAX_COMMENT + 20);
  const tail = await readAt(handle, fileSize - tailLength, tailLength);
  const dv = view(tail);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (dv.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new ZipFormatError('not a ZIP archive (no end-of-central-directory record)');
  let count = dv.getUint16(at + 10, true);
  let size = dv.getUint32(at + 12, true);
  let offset = dv.getUint32(at + 16, true);
  if (at >= 20 && dv.getUint32(at - 20, true) === ZIP64_LOCATOR) {
    const recordOffset = u64(dv, at - 20 + 8);
    const record = view(await readAt(handle, recordOffset, 56));
    if (record.getUint32(0, true) !== ZIP64_EOCD) throw new ZipFormatError('bad ZIP64 end record');
    count = u64(record, 32);
    size = u64(record, 40);
    offset = u64(record, 48);
  }
  if (offset + size > fileSize || size > MAX_DIRECTORY_BYTES) {
    throw new ZipFormatError('central directory lies outside the file or is too large');
  }
  return { offset, size, count };
}

/** Reads every entry of the central directory and resolves where each entry's data begins. */
export async function readZipDirectory(handle: FileHandle, fileSize: number): Promise<Map<string, ZipEntry>> {
  const { offset, size, count } = await findDirectory(handle, fileSize);
  const bytes = await readAt(handle, offset, size);
  const dv = view(bytes);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.length || dv.getUint32(at, true) !== CENTRAL) {
      throw new ZipFormatError(`central directory entry ${i} is malformed`);
    }
    const method = dv.getUint16(at + 10, true);
    let compressed = dv.getUint32(at + 20, true);
    let uncompressed = dv.getUint32(at + 24, true);
    const nameLength = dv.getUint16(at + 28, true);
    const extraLength = dv.getUint16(at + 30, true);
    const commentLength = dv.getUint16(at + 32, true);
    let localOffset = dv.getUint32(at + 42, true);
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // ZIP64 extra field: only the fields whose 32-bit slot is saturated are present, in this order.
    let extra = at + 46 + nameLength;
    const extraEnd = extra + extraLength;
    while (extra + 4 <= extraEnd) {
      const id = dv.getUint16(extra, true);
      const length = dv.getUint16(extra + 2, true);
      if (id === ZIP64_EXTRA) {
        let field = extra + 4;
        if (uncompressed === 0xffffffff) {
          uncompressed = u64(dv, field);
          field += 8;
        }
        if (compressed === 0xffffffff) {
          compressed = u64(dv, field);
          field += 8;
        }
        if (localOffset === 0xffffffff) localOffset = u64(dv, field);
      }
      extra += 4 + length;
    }
    if (method !== 0 || compressed !== uncompressed) {
      throw new ZipFormatError(`entry ${name} is compressed; PyTorch checkpoints store entries uncompressed`);
    }
    const local = view(await readAt(handle, localOffset, 30));
    if (local.getUint32(0, true) !== LOCAL) throw new ZipFormatError(`entry ${name} has no local header`);
    const dataOffset = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + uncompressed > fileSize) throw new ZipFormatError(`entry ${name} runs past the file`);
    entries.set(name, { name, dataOffset, size: uncompressed });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Reads a stored entry's bytes. */
export function readZipEntry(
  handle: FileHandle,
  entry: ZipEntry,
  start = 0,
  length = entry.size,
): Promise<Uint8Array> {
  if (start < 0 || start + length > entry.size) throw new ZipFormatError(`read outside entry ${entry.name}`);
  return readAt(handle, entry.dataOffset + start, length);
}
