import type { FileHandle } from 'node:fs/promises';
import { open as openFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { DTYPE_BYTES, floatBytesToFloat32 } from './safetensors.ts';
import { LegacyFormatError, readLegacyCheckpoint, readLegacyStorage } from './torch-legacy.ts';
import {
  PickleRefusedError,
  readStateDictPickle,
  type StorageDtype,
  type TensorRef,
} from './torch-pickle.ts';
import { readZipDirectory, readZipEntry, type ZipEntry, ZipFormatError } from './torch-zip.ts';

/** Why a PyTorch checkpoint was not read. */
export type TorchCheckpointErrorCode =
  | 'torch_pickle_refused'
  | 'torch_format_unsupported'
  | 'torch_tensor_invalid';

/** Raised for `.pth`/`.ckpt` files that are not plain tensor state dicts; the message names the safe alternative. */
export class TorchCheckpointError extends Error {
  override readonly name = 'TorchCheckpointError';
  constructor(
    readonly code: TorchCheckpointErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** One tensor of the state dict: its shape and dtype, as the weight loader's matcher wants. */
export interface TorchTensorInfo {
  name: string;
  dtype: StorageDtype;
  shape: number[];
}

function safetensorsHint(path: string): string {
  const stem = basename(path).replace(/\.(pth|pt|ckpt|bin)$/i, '');
  return `use ${stem}.safetensors instead (the same weights in the safetensors format)`;
}

/** Whether strides describe a contiguous row-major layout (size-1 dimensions may carry any stride). */
function isRowMajor(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d]!;
  }
  return true;
}

/**
 * The tensors of a state dict: the pickle's root dict, or its `state_dict` (Lightning `.ckpt`, mmseg) or `model`
 * (NormalBAE's scannet.pt) entry when the root holds no tensors itself.
 */
function stateDictOf(root: unknown): Map<string, TensorRef> {
  let dict = root;
  const hasTensors = (m: Map<unknown, unknown>) =>
    [...m.values()].some((v) => (v as TensorRef | null)?.kind === 'tensor');
  if (dict instanceof Map && !hasTensors(dict)) {
    for (const wrapper of ['state_dict', 'model']) {
      if (dict.get(wrapper) instanceof Map) {
        dict = dict.get(wrapper);
        break;
      }
    }
  }
  if (!(dict instanceof Map)) throw new PickleRefusedError('the checkpoint is not a state dict');
  const out = new Map<string, TensorRef>();
  for (const [key, value] of dict) {
    if (typeof key === 'string' && (value as TensorRef | null)?.kind === 'tensor')
      out.set(key, value as TensorRef);
  }
  return out;
}

/** Reads `length` bytes from byte `start` of the storage `key`. */
type StorageReader = (key: string, start: number, length: number) => Promise<Uint8Array>;

function refusedPickle(path: string, error: unknown): never {
  if (!(error instanceof PickleRefusedError)) throw error;
  throw new TorchCheckpointError(
    'torch_pickle_refused',
    `${basename(path)}: ${error.message} (only tensor state dicts are read, no code is run): ${safetensorsHint(path)}`,
  );
}

/** Checks that every tensor lies inside its storage (`storageBytes(key)`: its size, undefined when missing). */
function tensorInfos(
  path: string,
  refs: Map<string, TensorRef>,
  storageBytes: (key: string) => number | undefined,
): Map<string, TorchTensorInfo> {
  const tensors = new Map<string, TorchTensorInfo>();
  for (const [name, ref] of refs) {
    const bytes = storageBytes(ref.storage.key);
    const span = ref.shape.reduce(
      (end, n, i) => (n === 0 ? end : end + (n - 1) * ref.stride[i]!),
      ref.offset,
    );
    if (
      bytes === undefined ||
      bytes < ref.storage.numel * DTYPE_BYTES[ref.storage.dtype] ||
      span >= ref.storage.numel
    ) {
      throw new TorchCheckpointError(
        'torch_tensor_invalid',
        `${basename(path)}: tensor ${name} points outside its storage ${ref.storage.key}`,
      );
    }
    tensors.set(name, { name, dtype: ref.storage.dtype, shape: ref.shape });
  }
  return tensors;
}

/** Opens the ZIP format (PyTorch >= 1.6): `<prefix>data.pkl` and one `<prefix>data/<key>` entry per storage. */
async function openZip(path: string, handle: FileHandle, entries: Map<string, ZipEntry>) {
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw new TorchCheckpointError(
      'torch_format_unsupported',
      `${basename(path)} has ${pickles.length} data.pkl records, expected one: ${safetensorsHint(path)}`,
    );
  }
  let refs: Map<string, TensorRef>;
  try {
    refs = stateDictOf(readStateDictPickle(await readZipEntry(handle, entries.get(pickles[0]!)!)));
  } catch (error) {
    refusedPickle(path, error);
  }
  const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
  const tensors = tensorInfos(path, refs, (key) => entries.get(`${prefix}data/${key}`)?.size);
  const read: StorageReader = (key, start, length) =>
    readZipEntry(handle, entries.get(`${prefix}data/${key}`)!, start, length);
  return { refs, tensors, read };
}

/** Opens the legacy format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`); see `torch-legacy.ts`. */
async function openLegacy(path: string, handle: FileHandle, size: number, zipError: ZipFormatError) {
  let checkpoint: Awaited<ReturnType<typeof readLegacyCheckpoint>>;
  let refs: Map<string, TensorRef>;
  try {
    checkpoint = await readLegacyCheckpoint(handle, size);
    refs = stateDictOf(checkpoint.root);
  } catch (error) {
    if (!(error instanceof LegacyFormatError)) refusedPickle(path, error);
    const why = error.notLegacy
      ? `is not a PyTorch checkpoint (neither the ZIP format: ${zipError.message}; nor the legacy pickle format)`
      : `is a damaged legacy PyTorch checkpoint (${error.message})`;
    throw new TorchCheckpointError(
      'torch_format_unsupported',
      `${basename(path)} ${why}: ${safetensorsHint(path)}`,
    );
  }
  const { storages } = checkpoint;
  const tensors = tensorInfos(path, refs, (key) => {
    const storage = storages.get(key);
    return storage && storage.numel * DTYPE_BYTES[storage.dtype];
  });
  const read: StorageReader = (key, start, length) =>
    readLegacyStorage(handle, storages.get(key)!, start, length);
  return { refs, tensors, read };
}

/**
 * A PyTorch checkpoint (`.pth`, `.pt`, `.ckpt`: the `torch.save` ZIP format, or the legacy pre-1.6 format) opened
 * for reading one tensor at a time, with the same surface as `SafetensorsFile` for the weight loader. Its pickle is
 * interpreted by an allowlist (see `torch-pickle.ts`): no code in the file is ever run.
 */
export class TorchCheckpointFile {
  private closed = false;
  /** PyTorch checkpoints carry no string metadata. */
  readonly metadata: Record<string, string> = {};

  private constructor(
    private readonly handle: FileHandle,
    private readonly read: StorageReader,
    private readonly refs: Map<string, TensorRef>,
    readonly tensors: ReadonlyMap<string, TorchTensorInfo>,
  ) {}

  /** Opens a checkpoint and reads its directory and pickle (never the tensor data). */
  static async open(path: string): Promise<TorchCheckpointFile> {
    const handle = await openFile(path, 'r');
    try {
      const { size } = await handle.stat();
      let entries: Map<string, ZipEntry> | undefined;
      let zipError: ZipFormatError | undefined;
      try {
        entries = await readZipDirectory(handle, size);
      } catch (error) {
        if (!(error instanceof ZipFormatError)) throw error;
        zipError = error;
      }
      const { refs, tensors, read } = entries
        ? await openZip(path, handle, entries)
        : await openLegacy(path, handle, size, zipError!);
      return new TorchCheckpointFile(handle, read, refs, tensors);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads an F32, F16, BF16 or F64 tensor as contiguous float32 in row-major order (any strides). */
  async readFloat32(name: string): Promise<Float32Array> {
    if (this.closed) throw new TorchCheckpointError('torch_tensor_invalid', 'file is closed');
    const ref = this.refs.get(name);
    if (!ref) throw new TorchCheckpointError('torch_tensor_invalid', `no tensor named ${name}`);
    const { dtype } = ref.storage;
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16' && dtype !== 'F64') {
      throw new TorchCheckpointError('torch_tensor_invalid', `tensor ${name} is ${dtype}, not a float type`);
    }
    const count = ref.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    if (count === 0) return out;
    // Read only the span the view covers, then gather it element by element in row-major order.
    const last = ref.shape.reduce((end, n, i) => end + (n - 1) * ref.stride[i]!, ref.offset);
    const width = DTYPE_BYTES[dtype];
    const raw = await this.read(ref.storage.key, ref.offset * width, (last - ref.offset + 1) * width);
    const values = floatBytesToFloat32(raw, dtype);
    if (isRowMajor(ref.shape, ref.stride)) return values;
    const rank = ref.shape.length;
    const index = new Array<number>(rank).fill(0);
    let at = 0;
    for (let k = 0; k < count; k++) {
      out[k] = values[at]!;
      for (let d = rank - 1; d >= 0; d--) {
        index[d]!++;
        at += ref.stride[d]!;
        if (index[d]! < ref.shape[d]!) break;
        at -= ref.stride[d]! * ref.shape[d]!;
        index[d] = 0;
      }
    }
    return out;
  }

  /** Releases the file handle. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}
