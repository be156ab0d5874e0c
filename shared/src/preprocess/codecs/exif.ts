// Finds the Exif block in each container, walking segment/chunk headers only (no decoding), the same places
// browsers and OpenCV read it from: JPEG's APP1 "Exif" segment, PNG's eXIf chunk (before IDAT) and WebP's EXIF
// chunk (extended files whose VP8X header flags it). A cut or odd container yields no Exif rather than an error:
// the codec reports real damage when it decodes.

const APP1 = 0xe1;
const SOS = 0xda;
const EXIF_FLAG = 0x08;

/** The Exif payload of the first APP1 segment that starts with "Exif\0\0" (prefix included). */
export function jpegExif(bytes: Uint8Array): Uint8Array | undefined {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1] as number;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    if (marker === SOS || marker === 0xd9) return undefined;
    const length = ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
    const body = bytes.subarray(at + 4, at + 2 + length);
    if (marker === APP1 && body.length >= 6 && String.fromCharCode(...body.subarray(0, 4)) === 'Exif') {
      return body;
    }
    at += 2 + length;
  }
  return undefined;
}

/** The body of the eXIf chunk when it comes before the image data (a TIFF header, no prefix). */
export function pngExif(bytes: Uint8Array): Uint8Array | undefined {
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length =
      (((bytes[at] as number) << 24) |
        ((bytes[at + 1] as number) << 16) |
        ((bytes[at + 2] as number) << 8) |
        (bytes[at + 3] as number)) >>>
      0;
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === 'IDAT' || type === 'IEND') return undefined;
    if (type === 'eXIf') return bytes.subarray(at + 8, at + 8 + length);
    at += 12 + length;
  }
  return undefined;
}

/** The body of the EXIF chunk of an extended (VP8X) WebP that flags one. */
export function webpExif(bytes: Uint8Array): Uint8Array | undefined {
  const u32 = (at: number) =>
    ((bytes[at] as number) |
      ((bytes[at + 1] as number) << 8) |
      ((bytes[at + 2] as number) << 16) |
      ((bytes[at + 3] as number) << 24)) >>>
    0;
  if (bytes.length < 21 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'VP8X') return undefined;
  if (((bytes[20] as number) & EXIF_FLAG) === 0) return undefined;
  const end = Math.min(bytes.length, 8 + u32(4));
  let at = 12;
  while (at + 8 <= end) {
    const length = u32(at + 4);
    if (String.fromCharCode(...bytes.subarray(at, at + 4)) === 'EXIF') {
      return bytes.subarray(at + 8, at + 8 + length);
    }
    at += 8 + length + (length & 1); // chunks are padded to an even size
  }
  return undefined;
}
