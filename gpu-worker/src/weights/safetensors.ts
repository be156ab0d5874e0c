import type { FileHandle } from 'node:fs/promises';
import { open as openFile } from 'node:fs/promises';

/** Element types defined by the safetensors format that this reader knows about. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** One tensor's entry in a safetensors header; `dataOffsets` are relative to the start of the data section. */
export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  dataOffsets: [number, number];
}

/** Machine-readable reasons a safetensors file cannot be read. */
export type SafetensorsErrorCode =
  | 'safetensors_bad_header'
  | 'safetensors_bad_dtype'
  | 'safetensors_truncated'
  | 'safetensors_unknown_tensor'
  | 'safetensors_closed';

/** Raised for malformed, truncated or misused safetensors files. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  constructor(
    readonly code: SafetensorsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Bytes per element of each dtype (PyTorch's storages use the same set). */
export const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Headers larger than this are refused (the reference implementation uses the same 100 MB cap). */
const MAX_HEADER_BYTES = 100_000_000;

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

/** Where the bytes of a file come from: a file handle or memory. */
interface ByteSource {
  readonly size: number;
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

class MemorySource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.byteLength;
  }
  async read(position: number, length: number): Promise<Uint8Array> {
    // slice() copies into a fresh, aligned buffer that the caller may view as Float32Array.
    return this.bytes.slice(position, position + length);
  }
  async close(): Promise<void> {}
}

class FileSource implements ByteSource {
  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}
  async read(position: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(out, done, length - done, position + done);
      if (bytesRead === 0) {
        throw new SafetensorsError('safetensors_truncated', `file ended ${length - done} bytes early`);
      }
      done += bytesRead;
    }
    return out;
  }
  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Parsed header: metadata, tensor table and the absolute offset of the data section. */
interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensorInfo>;
  dataStart: number;
  dataLength: number;
}

function readHeaderLength(prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8) {
    throw new SafetensorsError(
      'safetensors_truncated',
      `file is ${fileSize} bytes, shorter than the 8-byte prefix`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      'safetensors_bad_header',
      `header length ${length} exceeds ${MAX_HEADER_BYTES}`,
    );
  }
  const headerLength = Number(length);
  if (headerLength < 2) {
    throw new SafetensorsError('safetensors_bad_header', `header length ${headerLength} is too small`);
  }
  if (8 + headerLength > fileSize) {
    throw new SafetensorsError(
      'safetensors_truncated',
      `header claims ${headerLength} bytes but the file has only ${fileSize - 8} after the prefix`,
    );
  }
  return headerLength;
}

function parseHeader(json: Uint8Array, fileSize: number): ParsedHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (error) {
    throw new SafetensorsError('safetensors_bad_header', `header is not valid UTF-8 JSON: ${String(error)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SafetensorsError('safetensors_bad_header', 'header is not a JSON object');
  }
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new SafetensorsError('safetensors_bad_header', '__metadata__ is not an object');
      }
      for (const [key, value] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof value !== 'string') {
          throw new SafetensorsError('safetensors_bad_header', `__metadata__.${key} is not a string`);
        }
        metadata[key] = value;
      }
      continue;
    }
    tensors.set(name, parseTensorEntry(name, entry));
  }
  const dataStart = 8 + json.byteLength;
  const dataLength = checkOffsets(tensors);
  if (dataStart + dataLength > fileSize) {
    throw new SafetensorsError(
      'safetensors_truncated',
      `tensor data needs ${dataLength} bytes but the file has only ${fileSize - dataStart}`,
    );
  }
  if (dataStart + dataLength < fileSize) {
    throw new SafetensorsError(
      'safetensors_bad_header',
      `file has ${fileSize - dataStart - dataLength} bytes after the last tensor`,
    );
  }
  return { metadata, tensors, dataStart, dataLength };
}

function parseTensorEntry(name: string, entry: unknown): SafetensorsTensorInfo {
  if (typeof entry !== 'object' || entry === null) {
    throw new SafetensorsError('safetensors_bad_header', `entry for ${name} is not an object`);
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw new SafetensorsError('safetensors_bad_dtype', `tensor ${name} has unknown dtype ${String(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError('safetensors_bad_header', `tensor ${name} has an invalid shape`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new SafetensorsError('safetensors_bad_header', `tensor ${name} has invalid data_offsets`);
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const byteLength = (offsets[1] as number) - (offsets[0] as number);
  if (elements * DTYPE_BYTES[dtype] !== byteLength) {
    throw new SafetensorsError(
      'safetensors_bad_header',
      `tensor ${name}: shape [${shape.join(', ')}] of ${dtype} needs ${elements * DTYPE_BYTES[dtype]} bytes, offsets give ${byteLength}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], dataOffsets: [offsets[0], offsets[1]] };
}

/** Checks that the tensors tile the data section without holes or overlaps; returns its length. */
function checkOffsets(tensors: Map<string, SafetensorsTensorInfo>): number {
  const sorted = [...tensors.values()].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]);
  let cursor = 0;
  for (const info of sorted) {
    if (info.dataOffsets[0] !== cursor) {
      throw new SafetensorsError(
        'safetensors_bad_header',
        `tensor ${info.name} starts at ${info.dataOffsets[0]}, expected ${cursor} (offsets must be contiguous)`,
      );
    }
    cursor = info.dataOffsets[1];
  }
  return cursor;
}

let halfTable: Float32Array | undefined;

/** float16 bit pattern -> float32 value, for all 65536 patterns (built once). */
export function getHalfTable(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[bits] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  halfTable = table;
  return table;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> float16 bits with round-to-nearest-even (what torch's .half() does). */
export function float32ToFloat16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    const halfway = 1 << (shift - 1);
    const rest = mantissa & ((1 << shift) - 1);
    let result = mantissa >>> shift;
    if (rest > halfway || (rest === halfway && result & 1)) result++;
    return sign | result;
  }
  let result = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && result & 1)) result++;
  return sign | result;
}

/** Little-endian float bytes of one dtype as float32 values (views the bytes for F32 when aligned). */
export function floatBytesToFloat32(raw: Uint8Array, dtype: 'F32' | 'F16' | 'BF16' | 'F64'): Float32Array {
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  if (dtype === 'F32') return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  if (dtype === 'F64') {
    return Float32Array.from(new Float64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8));
  }
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (dtype === 'F16') {
    const table = getHalfTable();
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  } else {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  }
  return out;
}

/** A safetensors file opened for reading one tensor at a time (files over 2 GiB work: never read the whole file). */
export class SafetensorsFile {
  private closed = false;

  private constructor(
    private readonly source: ByteSource,
    private readonly header: ParsedHeader,
  ) {}

  /** Opens a file on disk and reads only its header. */
  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await openFile(path, 'r');
    try {
      const { size } = await handle.stat();
      const source = new FileSource(handle, size);
      const prefix = size >= 8 ? await source.read(0, 8) : new Uint8Array(0);
      const headerLength = readHeaderLength(prefix, size);
      const json = await source.read(8, headerLength);
      return new SafetensorsFile(source, parseHeader(json, size));
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads a safetensors file held in memory. */
  static fromBytes(bytes: Uint8Array): SafetensorsFile {
    const headerLength = readHeaderLength(bytes, bytes.byteLength);
    const header = parseHeader(bytes.subarray(8, 8 + headerLength), bytes.byteLength);
    return new SafetensorsFile(new MemorySource(bytes), header);
  }

  /** The `__metadata__` string map (empty when absent). */
  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  /** Every tensor in the file by name. */
  get tensors(): ReadonlyMap<string, SafetensorsTensorInfo> {
    return this.header.tensors;
  }

  /** The header entry of one tensor, or a typed error naming it. */
  info(name: string): SafetensorsTensorInfo {
    const info = this.header.tensors.get(name);
    if (!info) throw new SafetensorsError('safetensors_unknown_tensor', `no tensor named ${name}`);
    return info;
  }

  private async readRaw(info: SafetensorsTensorInfo): Promise<Uint8Array> {
    if (this.closed) throw new SafetensorsError('safetensors_closed', 'file is closed');
    const [begin, end] = info.dataOffsets;
    return this.source.read(this.header.dataStart + begin, end - begin);
  }

  /** Reads an F32, F16 or BF16 tensor as float32 (row-major, the stored layout). */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.info(name);
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new SafetensorsError(
        'safetensors_bad_dtype',
        `tensor ${name} is ${info.dtype}, not a float type`,
      );
    }
    return floatBytesToFloat32(await this.readRaw(info), info.dtype);
  }

  /** Reads an I32 or I64 tensor as int32 (I64 values outside the int32 range are an error). */
  async readInt32(name: string): Promise<Int32Array> {
    const info = this.info(name);
    if (info.dtype !== 'I32' && info.dtype !== 'I64') {
      throw new SafetensorsError('safetensors_bad_dtype', `tensor ${name} is ${info.dtype}, not I32 or I64`);
    }
    const raw = await this.readRaw(info);
    const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
    if (info.dtype === 'I32')
      return new Int32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    const wide = new BigInt64Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 8);
    const out = new Int32Array(wide.length);
    for (let i = 0; i < wide.length; i++) {
      const value = wide[i]!;
      if (value > 2147483647n || value < -2147483648n) {
        throw new SafetensorsError(
          'safetensors_bad_dtype',
          `tensor ${name}[${i}] = ${value} does not fit int32`,
        );
      }
      out[i] = Number(value);
    }
    return out;
  }

  /** Releases the file handle; later reads fail with `safetensors_closed`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source.close();
  }
}

/** A tensor to write with {@link encodeSafetensors}; F16 data is given as float32 and rounded. */
export interface SafetensorsTensorInput {
  dtype: 'F32' | 'F16' | 'I32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Write a safetensors file (used by tests, the trainer and converters). */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const names = Object.keys(tensors);
  let offset = 0;
  for (const name of names) {
    const tensor = tensors[name]!;
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length) {
      throw new SafetensorsError(
        'safetensors_bad_header',
        `tensor ${name}: shape [${tensor.shape.join(', ')}] has ${elements} elements, data has ${tensor.data.length}`,
      );
    }
    const byteLength = elements * DTYPE_BYTES[tensor.dtype];
    header[name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces to a multiple of 8 so tensor data stays aligned, as the reference writer does.
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const withSpaces = new Uint8Array(padded).fill(0x20);
    withSpaces.set(json);
    json = withSpaces;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let cursor = 8 + json.byteLength;
  const view = new DataView(out.buffer);
  for (const name of names) {
    const { dtype, data } = tensors[name]!;
    if (dtype === 'F16') {
      for (let i = 0; i < data.length; i++)
        view.setUint16(cursor + 2 * i, float32ToFloat16Bits(data[i]!), true);
      cursor += data.length * 2;
    } else if (dtype === 'F32') {
      for (let i = 0; i < data.length; i++) view.setFloat32(cursor + 4 * i, data[i]!, true);
      cursor += data.length * 4;
    } else {
      for (let i = 0; i < data.length; i++) view.setInt32(cursor + 4 * i, data[i]!, true);
      cursor += data.length * 4;
    }
  }
  return out;
}
