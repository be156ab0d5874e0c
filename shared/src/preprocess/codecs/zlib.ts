import { ImageError } from '../errors.ts';

// zlib through the runtime's own DecompressionStream / CompressionStream ("deflate" is the zlib format PNG
// uses): native code in workerd and Node, several times faster than inflating in JS, which is what keeps a
// 512x512 PNG inside the Workers CPU budget. The JS inflater (fflate) stays as the fallback.

// Compressed bytes written per step; with deflate's ~1032:1 limit, bounds what one step can expand to before
// the size check runs.
const STEP = 16 * 1024;

/** True when the runtime has the Compression Streams API (workerd, Node >= 18, browsers). */
export function hasNativeZlib(): boolean {
  return typeof DecompressionStream === 'function' && typeof CompressionStream === 'function';
}

/**
 * Inflates a zlib stream split over `parts` into exactly `expected` bytes. Reading stops, and the stream is
 * cancelled, as soon as the output would pass `expected` (a decompression bomb never gets further than a step).
 */
export async function inflateNative(
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

/** zlib-compresses `data` with the runtime's CompressionStream (its default level). */
export async function deflateNative(data: Uint8Array): Promise<Uint8Array> {
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
