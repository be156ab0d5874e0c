import type { FileHandle } from 'node:fs/promises';
import { open as openFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { DTYPE_BYTES, floatBytesToFloat32 } from './safetensors.ts';
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
 * The tensors of a state dict: the pickle's root dict, or its `state_dict` entry (Lightning `.ckpt` files), or its
 * `model` entry (`{'model': state_dict, 'iter': n}`, e.g. the normal_bae annotator's scannet.pt).
 */
function stateDictOf(root: unknown): Map<string, TensorRef> {
  let dict = root;
  for (const entry of ['state_dict', 'model']) {
    if (dict instanceof Map && dict.get(entry) instanceof Map) {
      dict = dict.get(entry);
      break;
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

/**
 * A PyTorch checkpoint (`torch.save` ZIP format: `.pth`, `.pt`, `.ckpt`) opened for reading one tensor at a time,
 * with the same surface as `SafetensorsFile` for the weight loader. Its pickle is interpreted by an allowlist
 * (see `torch-pickle.ts`): no code in the file is ever run. The pre-1.6 legacy format is refused.
 */
export class TorchCheckpointFile {
  private closed = false;
  /** PyTorch checkpoints carry no string metadata. */
  readonly metadata: Record<string, string> = {};

  private constructor(
    private readonly handle: FileHandle,
    private readonly entries: Map<string, ZipEntry>,
    private readonly prefix: string,
    private readonly refs: Map<string, TensorRef>,
    readonly tensors: ReadonlyMap<string, TorchTensorInfo>,
  ) {}

  /** Opens a checkpoint and reads its directory and pickle (never the tensor data). */
  static async open(path: string): Promise<TorchCheckpointFile> {
    const handle = await openFile(path, 'r');
    try {
      const { size } = await handle.stat();
      let entries: Map<string, ZipEntry>;
      try {
        entries = await readZipDirectory(handle, size);
      } catch (error) {
        if (!(error instanceof ZipFormatError)) throw error;
        throw new TorchCheckpointError(
          'torch_format_unsupported',
          `${basename(path)} is not a PyTorch ZIP checkpoint (${error.message}); the legacy pre-1.6 format is not read: ${safetensorsHint(path)}`,
        );
      }
      const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
      if (pickles.length !== 1) {
        throw new TorchCheckpointError(
          'torch_format_unsupported',
          `${basename(path)} has ${pickles.length} data.pkl records, expected one: ${safetensorsHint(path)}`,
        );
      }
      const pickleEntry = entries.get(pickles[0]!)!;
      let refs: Map<string, TensorRef>;
      try {
        refs = stateDictOf(readStateDictPickle(await readZipEntry(handle, pickleEntry)));
      } catch (error) {
        if (!(error instanceof PickleRefusedError)) throw error;
        throw new TorchCheckpointError(
          'torch_pickle_refused',
          `${basename(path)}: ${error.message} (only tensor state dicts are read, no code is run): ${safetensorsHint(path)}`,
        );
      }
      const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
      const tensors = new Map<string, TorchTensorInfo>();
      for (const [name, ref] of refs) {
        const entry = entries.get(`${prefix}data/${ref.storage.key}`);
        const span = ref.shape.reduce(
          (end, n, i) => (n === 0 ? end : end + (n - 1) * ref.stride[i]!),
          ref.offset,
        );
        if (
          !entry ||
          entry.size < ref.storage.numel * DTYPE_BYTES[ref.storage.dtype] ||
          span >= ref.storage.numel
        ) {
          throw new TorchCheckpointError(
            'torch_tensor_invalid',
            `${basename(path)}: tensor ${name} points outside its storage ${ref.storage.key}`,
          );
        }
        tensors.set(name, { name, dtype: ref.storage.dtype, shape: ref.shape });
      }
      return new TorchCheckpointFile(handle, entries, prefix, refs, tensors);
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
    const entry = this.entries.get(`${this.prefix}data/${ref.storage.key}`)!;
    const raw = await readZipEntry(this.handle, entry, ref.offset * width, (last - ref.offset + 1) * width);
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
