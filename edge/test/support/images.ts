import { encodePng } from '@contour/shared/preprocess';

/** A synthetic photo-like RGB image: a bright disc and a diagonal bar on a gradient (has real edges). */
export function syntheticImage(width: number, height: number) {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inDisc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 4) ** 2;
      const onBar = Math.abs(x - y) < 6;
      const base = Math.round((x / width) * 60);
      data[i] = inDisc ? 230 : onBar ? 20 : base;
      data[i + 1] = inDisc ? 200 : onBar ? 180 : base + 20;
      data[i + 2] = inDisc ? 40 : onBar ? 20 : base + 40;
    }
  }
  return { width, height, channels: 3 as const, data };
}

/** The synthetic image as a PNG data URL. */
export function syntheticPngDataUrl(width: number, height: number): string {
  return `data:image/png;base64,${toBase64(encodePng(syntheticImage(width, height)))}`;
}

/** Bytes to base64 (workerd has btoa but no Buffer without nodejs_compat imports). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
