import { ImageError } from '../errors.ts';

// zlib in the runtime's native code rather than in JS: what keeps a 512x512 PNG inside the Workers CPU budget.
// First choice is node:zlib's synchronous calls (Node, and workerd with nodejs_compat, reached through
// process.getBuiltinModule so nothing here needs Node's types): its maxOutputLength bounds the output inside
// the one native call. Measured inside workerd on a 512x512 RGB PNG, inflateSync took about half the time of
// DecompressionStream and under half of fflate's JS inflate; deflating a 1-bit map, a tenth of
// CompressionStream's. The Compression Streams API is the second choice; callers fall back to fflate.

/** The part of node:zlib used here. */
interface NodeZlib {
  inflateSync(data: Uint8Array, options: { maxOutputLength: number }): Uint8Array;
  deflateSync(data: Uint8Array): Uint8Array;
}

let nodeZlibModule: NodeZlib | null | undefined;

/** node:zlib when the runtime offers it through process.getBuiltinModule, else null. */
function nodeZlib(): NodeZlib | null {
  if (nodeZlibModule === undefined) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    try {
      nodeZlibModule = (proc?.getBuiltinModule?.('node:zlib') as NodeZlib | undefined) ?? null;
    } catch {
      nodeZlibModule = null;
    }
  }
  return nodeZlibModule;
}

// Compressed bytes written per step; with deflate's ~1032:1 limit, bounds what one step can expand to before
// the size check runs.
const STEP = 16 * 1024;

/** True when the runtime has native zlib: node:zlib, or the Compression Streams API (workerd, Node, browsers). */
export function hasNativeZlib(): boolean {
  return (
    nodeZlib() !== null ||
    (typeof DecompressionStream === 'function' && typeof CompressionStream === 'function')
  );
}

function inflateError(error: unknown, label: string): ImageError {
  if (error instanceof ImageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof RangeError) {
    return new ImageError('image_corrupt', `${label} image data is larger than its dimensions allow`, {
      cause: error,
    });
  }
  const code = /end of (file|stream|data)|incomplete|truncat/i.test(message)
    ? 'image_truncated'
    : 'image_corrupt';
  return new ImageError(code, `${label} image data cannot be inflated: ${message}`, { cause: error });
}

/**
 * Inflates a zlib stream split over `parts` into exactly `expected` bytes with native zlib, refusing streams
 * that would give more (decompression bombs stop at the bound) or fewer. Needs {@link hasNativeZlib}.
 */
export async function inflateNative(
  parts: Uint8Array[],
  expected: number,
  label: string,
): Promise<Uint8Array> {
  const zlib = nodeZlib();
  if (!zlib) return inflateStream(parts, expected, label);
  let input = parts[0] ?? new Uint8Array(0);
  if (parts.length > 1) {
    input = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
    let at = 0;
    for (const part of parts) {
      input.set(part, at);
      at += part.length;
    }
  }
  let out: Uint8Array;
  try {
    // workerd's inflateSync refuses once its growing output buffer would pass the limit, not the output itself
    // (a 196,864-byte result fails under a 196,865 limit), so the limit leaves room for the buffer to double:
    // at most about twice the expected size is ever inflated, and anything over `expected` is refused below.
    out = zlib.inflateSync(input, { maxOutputLength: 2 * expected + 65536 });
  } catch (error) {
    throw inflateError(error, label);
  }
  if (out.length > expected) {
    throw new ImageError('image_corrupt', `${label} image data is larger than its dimensions allow`);
  }
  if (out.length !== expected) {
    throw new ImageError(
      'image_corrupt',
      `${label} image data holds ${out.length} bytes, ${expected} expected`,
    );
  }
  return out;
}

/**
 * {@link inflateNative} through DecompressionStream: reading stops, and the stream is cancelled, as soon as the
 * output would pass `expected` (a decompression bomb never gets further than a step).
 */
export async function inflateStream(
  parts: Uint8Array[],
  expected: number,
  label: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(expected);
  let written = 0;
  const stream = new DecompressionStream('deflate');
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const feed = (async () => {
    for (const part of parts) {
      for (let at = 0; at < part.length; at += STEP)
        await writer.write(part.subarray(at, at + STEP) as Uint8Array<ArrayBuffer>);
    }
    await writer.close();
  })();
  feed.catch(() => {}); // its failure surfaces through the reader as well
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (written + value.length > expected) {
        throw new ImageError('image_corrupt', `${label} image data is larger than its dimensions allow`);
      }
      out.set(value, written);
      written += value.length;
    }
    await feed;
  } catch (error) {
    reader.cancel().catch(() => {});
    writer.abort().catch(() => {});
    if (error instanceof ImageError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const code = /end of (file|stream|data)|incomplete|truncat/i.test(message)
      ? 'image_truncated'
      : 'image_corrupt';
    throw new ImageError(code, `${label} image data cannot be inflated: ${message}`, { cause: error });
  }
  if (written !== expected) {
    throw new ImageError('image_corrupt', `${label} image data holds ${written} bytes, ${expected} expected`);
  }
  return out;
}

/** zlib-compresses `data` with native zlib at its default level. Needs {@link hasNativeZlib}. */
export async function deflateNative(data: Uint8Array): Promise<Uint8Array> {
  const zlib = nodeZlib();
  if (zlib) return zlib.deflateSync(data);
  const stream = new Blob([data as Uint8Array<ArrayBuffer>])
    .stream()
    .pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

let crcTable: Int32Array | undefined;

/** CRC-32 (ISO 3309, as PNG chunks use) of `bytes`, continuing from `crc` (0 to start). */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++)
    c = (crcTable[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
