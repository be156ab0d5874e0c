import { zlibSync } from 'fflate';

/**
 * Decode-cost attack images, built byte by byte (our own generators, used by tests and the bench): files of a
 * few kilobytes whose decoding costs far more than their size suggests.
 */

/** Writes bits MSB-first with JPEG byte stuffing (a 0x00 after every 0xFF). */
class BitWriter {
  readonly bytes: number[] = [];
  private current = 0;
  private count = 0;
  write(value: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) {
      this.current = (this.current << 1) | ((value >> i) & 1);
      if (++this.count === 8) this.flushByte();
    }
  }
  private flushByte(): void {
    this.bytes.push(this.current);
    if (this.current === 0xff) this.bytes.push(0x00);
    this.current = 0;
    this.count = 0;
  }
  /** Pads the last byte with 1 bits, as the standard asks. */
  end(): number[] {
    while (this.count !== 0) this.write(1, 1);
    return this.bytes;
  }
}

const segment = (marker: number, body: number[]) => [
  0xff,
  marker,
  (body.length + 2) >> 8,
  (body.length + 2) & 0xff,
  ...body,
];

/**
 * A valid progressive grayscale JPEG of `scans` scans: one DC scan, then AC scans that code every block as
 * part of an end-of-band run (a few bytes each) while the decoder still visits every block per scan.
 */
export function manyScanJpeg(width: number, height: number, scans: number): Uint8Array {
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const out: number[] = [0xff, 0xd8];
  out.push(...segment(0xdb, [0x00, ...new Array<number>(64).fill(1)])); // DQT 0
  out.push(...segment(0xc2, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0])); // SOF2
  // DHT: DC table 0 with one code '0' for category 0; AC table 0 with one code '0' for EOB14 (0xE0).
  const oneCode = (klass: number, symbol: number) => [klass, 1, ...new Array<number>(15).fill(0), symbol];
  out.push(...segment(0xc4, oneCode(0x00, 0x00)));
  out.push(...segment(0xc4, oneCode(0x10, 0xe0)));
  // DC first scan: every block's DC difference is category 0.
  out.push(...segment(0xda, [1, 1, 0x00, 0, 0, 0]));
  const dc = new BitWriter();
  for (let b = 0; b < blocks; b++) dc.write(0, 1);
  out.push(...dc.end());
  for (let s = 1; s < scans; s++) {
    out.push(...segment(0xda, [1, 1, 0x00, 1, 63, 0])); // AC first, band 1..63
    const ac = new BitWriter();
    for (let left = blocks; left > 0; ) {
      const run = Math.min(left, 32767);
      ac.write(0, 1); // EOB14
      ac.write(Math.max(run - (1 << 14), 0), 14);
      left -= Math.max(run, 1 << 14);
    }
    out.push(...ac.end());
  }
  out.push(0xff, 0xd9);
  return Uint8Array.from(out);
}

/** A PNG of zeros at `bitDepth` 16 RGBA (optionally Adam7): a tiny file that inflates to width x height x 8 bytes. */
export function zeroPng16(width: number, height: number, interlaced = false): Uint8Array {
  const crcTable = new Uint32Array(256).map((_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (data: Uint8Array) => {
    let c = 0xffffffff;
    for (const byte of data) c = (crcTable[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, body.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(body, 8);
    view.setUint32(8 + body.length, crc(out.subarray(4, 8 + body.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([16, 6, 0, 0, interlaced ? 1 : 0], 8);
  // Raw scanlines: filter byte 0 and zero samples; Adam7 passes together are a little longer, so over-size.
  const raw = new Uint8Array((height + 8) * (1 + width * 8) + height * 16);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk('IHDR', ihdr),
    chunk('IDAT', rawLength(raw, width, height, interlaced)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** zlib of exactly the raw length the decoder expects (all zeros: filter 0, samples 0). */
function rawLength(_scratch: Uint8Array, width: number, height: number, interlaced: boolean): Uint8Array {
  const bpp = 8;
  let length = 0;
  if (!interlaced) length = height * (1 + width * bpp);
  else {
    const passes = [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ] as const;
    for (const [x0, y0, dx, dy] of passes) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w > 0 && h > 0) length += h * (1 + w * bpp);
    }
  }
  return zlibSync(new Uint8Array(length), { level: 9 });
}
