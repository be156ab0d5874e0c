import type { Image8 } from './image.ts';

/** EXIF orientation 1..8 (TIFF tag 0x0112): how the stored pixels must be turned to be shown upright. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

const ORIENTATION_TAG = 0x0112;
const TYPE_SHORT = 3;

/**
 * Reads the Orientation tag from IFD0 of a TIFF (Exif) body, starting at its byte-order mark. Anything missing,
 * out of range or malformed gives 1 (as shown): a broken Exif block must not make an image undecodable, and
 * browsers and OpenCV ignore it the same way.
 */
export function readTiffOrientation(tiff: Uint8Array): Orientation {
  if (tiff.length < 8) return 1;
  const order = (tiff[0] as number) | ((tiff[1] as number) << 8);
  const little = order === 0x4949; // "II"
  if (!little && order !== 0x4d4d) return 1; // neither "II" nor "MM"
  const u16 = (at: number) =>
    little
      ? (tiff[at] as number) | ((tiff[at + 1] as number) << 8)
      : ((tiff[at] as number) << 8) | (tiff[at + 1] as number);
  const u32 = (at: number) => (little ? u16(at) + u16(at + 2) * 65536 : u16(at) * 65536 + u16(at + 2));
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return 1;
    if (u16(entry) !== ORIENTATION_TAG) continue;
    if (u16(entry + 2) !== TYPE_SHORT || u32(entry + 4) < 1) return 1;
    const value = u16(entry + 8);
    return value >= 1 && value <= 8 ? (value as Orientation) : 1;
  }
  return 1;
}

/** Reads the orientation from an Exif block that may start with the JPEG-style "Exif\0\0" prefix. */
export function readExifOrientation(exif: Uint8Array): Orientation {
  const prefixed =
    exif.length >= 6 &&
    exif[0] === 0x45 &&
    exif[1] === 0x78 &&
    exif[2] === 0x69 &&
    exif[3] === 0x66 &&
    exif[4] === 0 &&
    exif[5] === 0;
  return readTiffOrientation(prefixed ? exif.subarray(6) : exif);
}

/** True when the orientation swaps width and height (the quarter turns and the two diagonal mirrors). */
export function swapsAxes(orientation: Orientation): boolean {
  return orientation >= 5;
}

/**
 * Turns stored pixels upright for an EXIF orientation, as browsers and OpenCV's imread do:
 * 2 mirror left-right, 3 half turn, 4 mirror top-bottom, 5 transpose, 6 quarter turn clockwise,
 * 7 transverse (anti-diagonal mirror), 8 quarter turn counter-clockwise. Orientation 1 returns `img` itself.
 */
export function applyOrientation<T extends Image8>(img: T, orientation: Orientation): T {
  if (orientation === 1) return img;
  const { width, height, channels, data } = img;
  const out = new Uint8Array(data.length);
  const swap = swapsAxes(orientation);
  const outWidth = swap ? height : width;
  const outHeight = swap ? width : height;
  // Each output pixel reads source (sx, sy) = (x0 + x * dxCol + y * dxRow, y0 + x * dyCol + y * dyRow).
  let x0 = 0;
  let y0 = 0;
  let dxCol = 1;
  let dyCol = 0;
  let dxRow = 0;
  let dyRow = 1;
  switch (orientation) {
    case 2:
      [x0, dxCol] = [width - 1, -1];
      break;
    case 3:
      [x0, y0, dxCol, dyRow] = [width - 1, height - 1, -1, -1];
      break;
    case 4:
      [y0, dyRow] = [height - 1, -1];
      break;
    case 5:
      [dxCol, dyCol, dxRow, dyRow] = [0, 1, 1, 0];
      break;
    case 6:
      [y0, dxCol, dyCol, dxRow, dyRow] = [height - 1, 0, -1, 1, 0];
      break;
    case 7:
      [x0, y0, dxCol, dyCol, dxRow, dyRow] = [width - 1, height - 1, 0, -1, -1, 0];
      break;
    case 8:
      [x0, dxCol, dyCol, dxRow, dyRow] = [width - 1, 0, 1, -1, 0];
      break;
  }
  const colStep = (dyCol * width + dxCol) * channels;
  const rowStep = (dyRow * width + dxRow) * channels;
  let rowStart = (y0 * width + x0) * channels;
  let o = 0;
  for (let y = 0; y < outHeight; y++, rowStart += rowStep) {
    for (let x = 0, s = rowStart; x < outWidth; x++, s += colStep) {
      for (let c = 0; c < channels; c++) out[o++] = data[s + c] as number;
    }
  }
  return { ...img, width: outWidth, height: outHeight, data: out };
}
