import type { ControlMap } from '@contour/shared/preprocess';

/** A width and height in pixels. */
export interface Size {
  width: number;
  height: number;
}

/**
 * The size a base model trained at one resolution samples a request at: the shorter side scaled to
 * `nativeResolution`, the aspect ratio kept, each side rounded to `multiple` (what the UNet's downsampling needs).
 * The built-in model is trained on 64x64 images, so a 512x768 request samples at 64x96.
 */
export function nativeSamplingSize(requested: Size, nativeResolution: number, multiple: number): Size {
  const scale = nativeResolution / Math.min(requested.width, requested.height);
  const side = (length: number) => Math.max(multiple, Math.round((length * scale) / multiple) * multiple);
  return { width: side(requested.width), height: side(requested.height) };
}

/** The source interval [start, end) a destination pixel covers along one axis (at least one pixel). */
function footprint(index: number, source: number, destination: number): [number, number] {
  const start = Math.min(source - 1, Math.floor((index * source) / destination));
  const end = Math.max(start + 1, Math.min(source, Math.ceil(((index + 1) * source) / destination)));
  return [start, end];
}

/**
 * Resizes a control map by taking, per channel, the maximum over each destination pixel's footprint.
 * Why not area averaging: control maps are mostly thin white lines on black (canny, scribble, lineart), and the
 * built-in head was trained on 1-pixel outlines; averaging a 512-pixel map down to 64 would fade a 1-pixel
 * line to 1/8 of its value, a map the head never saw. The maximum keeps every line at full strength.
 */
export function resizeControlMapMax(map: ControlMap, width: number, height: number): ControlMap {
  if (map.width === width && map.height === height) return map;
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const [y0, y1] = footprint(y, map.height, height);
    for (let x = 0; x < width; x++) {
      const [x0, x1] = footprint(x, map.width, width);
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = y0; sy < y1; sy++) {
        let at = (sy * map.width + x0) * 3;
        for (let sx = x0; sx < x1; sx++, at += 3) {
          r = Math.max(r, map.data[at]!);
          g = Math.max(g, map.data[at + 1]!);
          b = Math.max(b, map.data[at + 2]!);
        }
      }
      const out = (y * width + x) * 3;
      data[out] = r;
      data[out + 1] = g;
      data[out + 2] = b;
    }
  }
  return { width, height, channels: 3, data };
}
