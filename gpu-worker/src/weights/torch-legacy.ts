import type { FileHandle } from 'node:fs/promises';
import { DTYPE_BYTES } from './safetensors.ts';
import { PickleRefusedError, PickleTruncatedError, readPickle, type StorageRef } from './torch-pickle.ts';

/**
 * The legacy (pre-1.6, non-ZIP) `torch.save` layout, as `torch.serialization._legacy_load` reads it: five things in
 * a row, none of them run here:
 *   pickle(magic number) pickle(protocol version 1001) pickle(sys_info dict)
 *   pickle(the object; storages as persistent ids ('storage', type, key, location, numel, view_metadata))
 *   pickle(list of storage keys)
 *   then for each key in that list: int64 element count (little-endian) + the storage's raw bytes.
 * Only the pickles at the head are read into memory; tensor bytes are read later by offset.
 */

/** `torch.serialization.MAGIC_NUMBER`, the first pickle of a legacy file. */
const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
/** `torch.serialization.PROTOCOL_VERSION`. */
const PROTOCOL_VERSION = 1001;
/** How much of the file's head is read first; it grows (x4) until the pickles fit, up to the pickle limit. */
const FIRST_HEAD_BYTES = 1024 * 1024;
const MAX_HEAD_BYTES = 260 * 1024 * 1024;

/** Raised for a file that is not (or not a readable) legacy checkpoint; `notLegacy` when it does not even start like one. */
export class LegacyFormatError extends Error {
  override readonly name = 'LegacyFormatError';
  constructor(
    message: string,
    readonly notLegacy = false,
  ) {
    super(message);
  }
}

/** Where one storage's bytes are in the file. */
export interface LegacyStorage {
  dtype: StorageRef['dtype'];
  numel: number;
  dataOffset: number;
}

/** A legacy checkpoint's object (with TensorRefs, as `readStateDictPickle` returns) and its storages. */
export interface LegacyCheckpoint {
  root: unknown;
  storages: Map<string, LegacyStorage>;
}

async function readAt(handle: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new LegacyFormatError(`file ends ${length - done} bytes early`);
    done += bytesRead;
  }
  return out;
}

/** Whether the bytes start like a legacy checkpoint: a protocol-2+ pickle of the magic number (PROTO, LONG1 10). */
export function looksLegacy(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x80 && head[2] === 0x8a && head[3] === 0x0a;
}

interface Head {
  root: unknown;
  keys: string[];
  dtypes: Map<string, { dtype: StorageRef['dtype']; numel: number }>;
  end: number;
}

/** Parses the five pickles at the start of `bytes`; throws PickleTruncatedError when `bytes` ends too soon. */
function parseHead(bytes: Uint8Array): Head {
  const magic = readPickle(bytes, 0);
  if (magic.value !== MAGIC_NUMBER) throw new LegacyFormatError('no PyTorch magic number', true);
  const protocol = readPickle(bytes, magic.end);
  if (protocol.value !== PROTOCOL_VERSION) {
    throw new LegacyFormatError(
      `legacy protocol version ${String(protocol.value)}, expected ${PROTOCOL_VERSION}`,
    );
  }
  const sysInfo = readPickle(bytes, protocol.end);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new LegacyFormatError('it was saved on a big-endian machine');
  }
  const dtypes = new Map<string, { dtype: StorageRef['dtype']; numel: number }>();
  const object = readPickle(bytes, sysInfo.end, (storage) => {
    const seen = dtypes.get(storage.key);
    if (seen && (seen.dtype !== storage.dtype || seen.numel !== storage.numel)) {
      throw new PickleRefusedError(`storage ${storage.key} is described twice, differently`);
    }
    dtypes.set(storage.key, { dtype: storage.dtype, numel: storage.numel });
  });
  const keys = readPickle(bytes, object.end);
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === 'string')) {
    throw new PickleRefusedError('the storage key list is not a list of strings');
  }
  return { root: object.value, keys: keys.value as string[], dtypes, end: keys.end };
}

/**
 * Reads the head of a legacy checkpoint and locates every storage's bytes (without reading them). PickleRefusedError
 * for a pickle beyond tensors and containers; LegacyFormatError for a damaged or foreign file.
 */
export async function readLegacyCheckpoint(handle: FileHandle, fileSize: number): Promise<LegacyCheckpoint> {
  let length = Math.min(fileSize, FIRST_HEAD_BYTES);
  let head: Head | undefined;
  while (!head) {
    const bytes = await readAt(handle, 0, length);
    if (!looksLegacy(bytes)) throw new LegacyFormatError('not a legacy PyTorch checkpoint', true);
    try {
      head = parseHead(bytes);
    } catch (error) {
      if (!(error instanceof PickleTruncatedError)) throw error;
      if (length === fileSize) throw new LegacyFormatError('the file ends inside its pickles');
      if (length >= MAX_HEAD_BYTES) throw new PickleRefusedError('pickle is too large');
      length = Math.min(fileSize, length * 4);
    }
  }
  const storages = new Map<string, LegacyStorage>();
  let at = head.end;
  for (const key of head.keys) {
    const described = head.dtypes.get(key);
    if (!described) throw new LegacyFormatError(`storage ${key} has data but no description in the pickle`);
    if (storages.has(key)) throw new LegacyFormatError(`storage ${key} is listed twice`);
    const count = new DataView((await readAt(handle, at, 8)).buffer).getBigInt64(0, true);
    if (count !== BigInt(described.numel)) {
      throw new LegacyFormatError(
        `storage ${key} holds ${count} elements, its description says ${described.numel}`,
      );
    }
    const dataOffset = at + 8;
    at = dataOffset + described.numel * DTYPE_BYTES[described.dtype];
    if (at > fileSize) throw new LegacyFormatError(`storage ${key} runs past the end of the file`);
    storages.set(key, { dtype: described.dtype, numel: described.numel, dataOffset });
  }
  return { root: head.root, storages };
}

/** Reads `length` bytes from `start` of a located storage. */
export function readLegacyStorage(
  handle: FileHandle,
  storage: LegacyStorage,
  start: number,
  length: number,
): Promise<Uint8Array> {
  return readAt(handle, storage.dataOffset + start, length);
}
