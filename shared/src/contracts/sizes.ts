/**
 * Output size rules. SD1.5's latent is 1/8 of the image, and the original apps round both sides to
 * multiples of 64 (`resize_image`); we keep that rule and say so instead of rounding silently.
 */

/** Both sides must be multiples of this (the original `resize_image` rounds to 64). */
export const SIDE_MULTIPLE = 64;
/** Smallest allowed side in pixels. */
export const MIN_SIDE = 256;
/** Largest allowed side in pixels. */
export const MAX_SIDE = 1024;
/** Cap on width * height (1024x768): bounds GPU memory and time per image. */
export const MAX_PIXELS = 1024 * 768;
/** Default short side when the size is derived from the control image (the apps' `image_resolution`). */
export const DEFAULT_IMAGE_RESOLUTION = 512;

/** A width and height in pixels. */
export interface Size {
  width: number;
  height: number;
}

/** numpy's `np.round`: halves go to the even neighbour (the original `resize_image` relies on it). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Why a size is invalid, or null when it is valid. */
export function sizeProblem(size: Size): string | null {
  for (const side of ['width', 'height'] as const) {
    const value = size[side];
    if (!Number.isInteger(value)) return `${side} must be an integer`;
    if (value % SIDE_MULTIPLE !== 0) return `${side} ${value} is not a multiple of ${SIDE_MULTIPLE}`;
    if (value < MIN_SIDE || value > MAX_SIDE) return `${side} ${value} is outside ${MIN_SIDE}..${MAX_SIDE}`;
  }
  if (size.width * size.height > MAX_PIXELS) {
    return `${size.width}x${size.height} has ${size.width * size.height} pixels, over the cap of ${MAX_PIXELS}`;
  }
  return null;
}

/** True when the size obeys every rule above. */
export function isValidSize(size: Size): boolean {
  return sizeProblem(size) === null;
}

const clampSide = (value: number): number => Math.min(MAX_SIDE, Math.max(MIN_SIDE, value));

/** Largest valid size with the same aspect ratio as `size` that fits the side and pixel caps. */
export function fitToLimits(size: Size): Size {
  const aspect = size.width / size.height;
  let scale = Math.min(1, MAX_SIDE / size.width, MAX_SIDE / size.height);
  if (size.width * size.height * scale * scale > MAX_PIXELS)
    scale = Math.sqrt(MAX_PIXELS / (size.width * size.height));
  let width = clampSide(Math.floor((size.width * scale) / SIDE_MULTIPLE) * SIDE_MULTIPLE);
  let height = clampSide(Math.floor((size.height * scale) / SIDE_MULTIPLE) * SIDE_MULTIPLE);
  // Extreme aspect ratios can hit the minimum side and push the other back over the pixel cap.
  while (width * height > MAX_PIXELS) {
    if (width / height > aspect || height === MIN_SIDE) width -= SIDE_MULTIPLE;
    else height -= SIDE_MULTIPLE;
  }
  return { width, height };
}

/**
 * Up to three valid sizes closest to a rejected one (by total side change), for 422 messages:
 * each side rounded down/up to the grid and clamped, one side shrunk to the pixel cap, and the
 * aspect-preserving fit.
 */
export function nearestValidSizes(size: Size, count = 3): Size[] {
  const sideOptions = (value: number): number[] => {
    const v = Number.isFinite(value) ? value : MIN_SIDE;
    const down = clampSide(Math.floor(v / SIDE_MULTIPLE) * SIDE_MULTIPLE);
    const up = clampSide(Math.ceil(v / SIDE_MULTIPLE) * SIDE_MULTIPLE);
    return [...new Set([down, up])];
  };
  const candidates: Size[] = [];
  for (const width of sideOptions(size.width)) {
    for (const height of sideOptions(size.height)) candidates.push({ width, height });
  }
  // Over the pixel cap: keep one side and shrink the other, or shrink both keeping the aspect.
  for (const { width, height } of [...candidates]) {
    const fit = (side: number) => clampSide(Math.floor(MAX_PIXELS / side / SIDE_MULTIPLE) * SIDE_MULTIPLE);
    candidates.push(
      { width, height: Math.min(height, fit(width)) },
      { width: Math.min(width, fit(height)), height },
    );
  }
  if (Number.isFinite(size.width) && Number.isFinite(size.height) && size.width > 0 && size.height > 0) {
    candidates.push(fitToLimits(size));
  }
  const distance = (s: Size) => Math.abs(s.width - size.width) + Math.abs(s.height - size.height);
  const seen = new Set<string>();
  return candidates
    .filter(isValidSize)
    .sort((a, b) => distance(a) - distance(b) || b.width * b.height - a.width * a.height)
    .filter((s) => {
      const key = formatSize(s);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, count);
}

/** `WIDTHxHEIGHT`. */
export function formatSize(size: Size): string {
  return `${size.width}x${size.height}`;
}

/**
 * The size the original `resize_image(img, resolution)` produces, caps aside: scale so the short side is
 * `resolution`, then round each side to a multiple of 64, half to even as numpy does.
 */
export function resizeImageSize(image: Size, resolution: number): Size {
  const k = resolution / Math.min(image.width, image.height);
  return {
    width: roundHalfEven((image.width * k) / SIDE_MULTIPLE) * SIDE_MULTIPLE,
    height: roundHalfEven((image.height * k) / SIDE_MULTIPLE) * SIDE_MULTIPLE,
  };
}

/** The derived output size and whether it had to be shrunk to the caps. */
export interface DerivedSize extends Size {
  /** True when the original `resize_image` size broke a cap and was fitted (aspect kept). */
  adjusted: boolean;
  /** What `resize_image` alone would have produced. */
  original: Size;
}

/**
 * Output size when the request gives none, as the original `resize_image` computes it from the control
 * image: scale so the short side is `resolution`, round each side to a multiple of 64 (half to even);
 * then, unlike the original, fit the result into our caps and report that it was adjusted.
 */
export function deriveOutputSize(image: Size, resolution = DEFAULT_IMAGE_RESOLUTION): DerivedSize {
  const original = resizeImageSize(image, resolution);
  if (isValidSize(original)) return { ...original, adjusted: false, original };
  return { ...fitToLimits(original), adjusted: true, original };
}
