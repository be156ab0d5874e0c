/**
 * A restricted reader for the pickles inside PyTorch checkpoints (`data.pkl` of the ZIP format, the pickles at the
 * head of the legacy format). It never executes anything: it
 * interprets the opcodes a state dict needs and builds plain values, and the only callables it accepts are the
 * handful PyTorch uses to describe tensors (`OrderedDict`, `_rebuild_tensor(_v2)`, `_rebuild_parameter`) and the
 * typed-storage names. Any other global (`os.system`, `builtins.eval`, a class of the saving program...) is
 * refused by name. Hand-written: no npm library unpickles with such an allowlist, and Python's
 * `torch.load(weights_only=True)` is the behaviour it mirrors.
 */

import type { SafetensorsDtype } from './safetensors.ts';

/** Element types of PyTorch storages, named as safetensors names them. */
export type StorageDtype = SafetensorsDtype;

/** A typed storage the pickle refers to by key (its bytes live in `data/<key>` of the archive). */
export interface StorageRef {
  readonly kind: 'storage';
  readonly dtype: StorageDtype;
  readonly key: string;
  readonly numel: number;
  /** Legacy format only: a view of `view.numel` elements from `view.offset` of the storage `key`. */
  readonly view?: { readonly offset: number; readonly numel: number };
}

/** A tensor as a view of a storage: offset, shape and strides in elements. */
export interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: number[];
  readonly stride: number[];
}

/** Raised when a pickle uses anything beyond tensors and containers; `global` names the refused callable. */
export class PickleRefusedError extends Error {
  override readonly name: string = 'PickleRefusedError';
  constructor(
    message: string,
    readonly global?: string,
  ) {
    super(message);
  }
}

/** Raised when the bytes end before the pickle's STOP (a caller reading a file's head may read more and retry). */
export class PickleTruncatedError extends PickleRefusedError {
  override readonly name = 'PickleTruncatedError';
}

interface GlobalRef {
  readonly kind: 'global';
  readonly qualified: string;
}

const STORAGE_DTYPES: Record<string, StorageDtype> = {
  'torch.DoubleStorage': 'F64',
  'torch.FloatStorage': 'F32',
  'torch.HalfStorage': 'F16',
  'torch.BFloat16Storage': 'BF16',
  'torch.LongStorage': 'I64',
  'torch.IntStorage': 'I32',
  'torch.ShortStorage': 'I16',
  'torch.CharStorage': 'I8',
  'torch.ByteStorage': 'U8',
  'torch.BoolStorage': 'BOOL',
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);

/** Pickles larger than this are refused: a state dict's pickle is a few MB at most. */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;

type Value = unknown;

function isGlobal(value: Value): value is GlobalRef {
  return typeof value === 'object' && value !== null && (value as GlobalRef).kind === 'global';
}

function asStorage(pid: Value): StorageRef {
  // ('storage', <storage type>, key, location, numel), as torch.save's persistent_id writes it; the legacy format
  // adds view metadata: None, or (view key, offset, numel) for a storage view (files of PyTorch < 0.4).
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new PickleRefusedError('persistent id is not a storage reference');
  }
  const [, type, key, , numel, viewMetadata] = pid as [string, Value, Value, Value, Value, Value];
  const dtype = isGlobal(type) ? STORAGE_DTYPES[type.qualified] : undefined;
  if (!dtype || typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) {
    throw new PickleRefusedError(`unsupported storage ${isGlobal(type) ? type.qualified : String(type)}`);
  }
  const storage: StorageRef = { kind: 'storage', dtype, key, numel: numel as number };
  if (viewMetadata === undefined || viewMetadata === null) return storage;
  const [, offset, viewNumel] = Array.isArray(viewMetadata) ? viewMetadata : [];
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(viewNumel) ||
    offset < 0 ||
    viewNumel < 0 ||
    offset + viewNumel > storage.numel
  ) {
    throw new PickleRefusedError(`storage view of ${key} is not inside its storage`);
  }
  return { ...storage, view: { offset, numel: viewNumel } };
}

function intList(value: Value, what: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isInteger(v) && v >= 0)) {
    throw new PickleRefusedError(`tensor ${what} is not a tuple of integers`);
  }
  return value as number[];
}

function call(fn: GlobalRef, args: Value[]): Value {
  switch (fn.qualified) {
    case 'collections.OrderedDict': {
      const out = new Map<Value, Value>();
      const items = args[0];
      if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair)) out.set(pair[0], pair[1]);
      return out;
    }
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, ...): v2 adds requires_grad and hooks, which are not needed.
      const storage = args[0] as StorageRef;
      if (storage?.kind !== 'storage') throw new PickleRefusedError('tensor without a storage');
      const offset = args[1] as number;
      if (!Number.isSafeInteger(offset) || offset < 0) throw new PickleRefusedError('bad storage offset');
      const shape = intList(args[2], 'size');
      const stride = intList(args[3], 'stride');
      if (shape.length !== stride.length)
        throw new PickleRefusedError('tensor size and stride differ in rank');
      if (!storage.view) return { kind: 'tensor', storage, offset, shape, stride } satisfies TensorRef;
      // A view of a legacy storage view: address the root storage directly, staying inside the view.
      const span = shape.some((n) => n === 0)
        ? offset
        : shape.reduce((end, n, i) => end + (n - 1) * stride[i]!, offset);
      if (shape.every((n) => n > 0) && span >= storage.view.numel) {
        throw new PickleRefusedError(`tensor points outside the storage view of ${storage.key}`);
      }
      const { view, ...root } = storage;
      return {
        kind: 'tensor',
        storage: root,
        offset: view.offset + offset,
        shape,
        stride,
      } satisfies TensorRef;
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return args[0];
    default:
      throw new PickleRefusedError(`refused to call ${fn.qualified}`, fn.qualified);
  }
}

/** Interprets a protocol 2-5 pickle of containers and tensors; the result holds {@link TensorRef}s in Maps/arrays. */
export function readStateDictPickle(bytes: Uint8Array): Value {
  if (bytes.length > MAX_PICKLE_BYTES) throw new PickleRefusedError('pickle is too large');
  return readPickle(bytes, 0).value;
}

/**
 * Interprets the pickle that starts at `start` of `bytes` (the legacy format holds several in a row) and returns its
 * value and the position after its STOP. Integers beyond 2^53 come back as bigint (the legacy magic number).
 * `onStorage` sees every storage the pickle refers to (the legacy format needs their types to walk its data).
 */
export function readPickle(
  bytes: Uint8Array,
  start: number,
  onStorage?: (storage: StorageRef) => void,
): { value: Value; end: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const stack: Value[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();
  let pos = start;

  const need = (n: number) => {
    if (pos + n > bytes.length) {
      if (pos + n - start > MAX_PICKLE_BYTES) throw new PickleRefusedError('pickle is too large');
      throw new PickleTruncatedError('pickle ends early');
    }
  };
  const u8 = () => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = () => {
    need(2);
    pos += 2;
    return dv.getUint16(pos - 2, true);
  };
  const u32 = () => {
    need(4);
    pos += 4;
    return dv.getUint32(pos - 4, true);
  };
  const text = (n: number) => {
    need(n);
    pos += n;
    return utf8.decode(bytes.subarray(pos - n, pos));
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleTruncatedError('pickle ends early');
    const s = utf8.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw new PickleRefusedError('pickle stack underflow');
    return stack.pop();
  };
  const popMark = () => {
    const at = marks.pop();
    if (at === undefined) throw new PickleRefusedError('pickle has no mark');
    return stack.splice(at);
  };
  const top = () => {
    if (stack.length === 0) throw new PickleRefusedError('pickle stack underflow');
    return stack[stack.length - 1];
  };
  const global = (module: string, name: string): GlobalRef => {
    const qualified = `${module}.${name}`;
    if (!CALLABLES.has(qualified) && !(qualified in STORAGE_DTYPES)) {
      throw new PickleRefusedError(`refused pickle global ${qualified}`, qualified);
    }
    return { kind: 'global', qualified };
  };
  const setItems = (target: Value, items: Value[]) => {
    if (!(target instanceof Map)) throw new PickleRefusedError('SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const long = (n: number) => {
    need(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[pos + i]!);
    if (n > 0 && bytes[pos + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
    pos += n;
    // Beyond 2^53 it stays a bigint, which no tensor field accepts (they require safe integers).
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) return value;
    return Number(value);
  };
  const length = (n: number) => {
    const value = long(n);
    if (typeof value !== 'number' || value < 0) throw new PickleRefusedError('bad length');
    return value;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        need(8);
        pos += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw new PickleRefusedError('pickle stops with a malformed stack');
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x64: {
        // DICT
        const map = new Map();
        setItems(map, popMark());
        stack.push(map);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw new PickleRefusedError(`memo ${key} is undefined`);
        stack.push(memo.get(key));
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text(length(8)));
        break;
      case 0x54: // BINSTRING (Python 2 str; torch.load decodes these as UTF-8)
        stack.push(text(length(4)));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text(u8()));
        break;
      case 0x42: // BINBYTES
      case 0x43: {
        // SHORT_BINBYTES
        const n = op === 0x42 ? u32() : u8();
        need(n);
        stack.push(bytes.slice(pos, pos + n));
        pos += n;
        break;
      }
      case 0x4a: // BININT
        need(4);
        pos += 4;
        stack.push(dv.getInt32(pos - 4, true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(u8()));
        break;
      case 0x8b: // LONG4
        stack.push(long(length(4)));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        pos += 8;
        stack.push(dv.getFloat64(pos - 8, false));
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof name !== 'string' || typeof module !== 'string')
          throw new PickleRefusedError('bad STACK_GLOBAL');
        stack.push(global(module, name));
        break;
      }
      case 0x51: {
        // BINPERSID
        const storage = asStorage(pop());
        onStorage?.(storage);
        stack.push(storage);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!isGlobal(fn) || !Array.isArray(args)) throw new PickleRefusedError('REDUCE on a non-callable');
        stack.push(call(fn, args));
        break;
      }
      case 0x62: {
        // BUILD: only an OrderedDict's __dict__ (state_dict's `_metadata`), which is dropped.
        const state = pop();
        if (!(top() instanceof Map) || !(state instanceof Map || state === null)) {
          throw new PickleRefusedError('BUILD of an object other than a dict');
        }
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const value = pop();
        const list = top();
        if (!Array.isArray(list)) throw new PickleRefusedError('APPEND to a non-list');
        list.push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw new PickleRefusedError('APPENDS to a non-list');
        list.push(...items);
        break;
      }
      default:
        throw new PickleRefusedError(`refused pickle opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
