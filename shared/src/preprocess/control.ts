import { canny } from './canny.ts';
import { hwc3 } from './convert.ts';
import { ImageError } from './errors.ts';
import type { GrayImage, Image8 } from './image.ts';
import { assertImage } from './validate.ts';

/** The original scribble app's map: 255 where the darkest channel is below 127, else 0 (one channel). */
export function scribble(img: Image8): GrayImage {
  const rgb = hwc3(img);
  const { width, height, data } = rgb;
  const out = new Uint8Array(width * height);
  for (let i = 0, p = 0; i < out.length; i++, p += 3) {
    const r = data[p] as number;
    const g = data[p + 1] as number;
    const b = data[p + 2] as number;
    const min = Math.min(r, g, b);
    if (min < 127) out[i] = 255;
  }
  return { width, height, channels: 1, data: out };
}

/** 255 - value on every channel (alpha included when present). */
export function invert<C extends number>(img: Image8<C>): Image8<C> {
  assertImage(img, [1, 2, 3, 4], 'invert');
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = 255 - (img.data[i] as number);
  return { width: img.width, height: img.height, channels: img.channels, data: out };
}

/**
 * Lineart models take dark lines on white inverted (the 1.1 apps feed `1 - map / 255`): HWC3, then invert;
 * dividing the result by 255 gives that control.
 */
export function lineart(img: Image8): Image8<3> {
  return invert(hwc3(img));
}

/** Names of the cheap preprocessors {@link preprocess} runs. */
export const PREPROCESSORS = ['canny', 'scribble', 'invert', 'lineart', 'none'] as const;
/** One of {@link PREPROCESSORS}. */
export type PreprocessorName = (typeof PREPROCESSORS)[number];

/** Options for {@link preprocess}; thresholds are used by canny only (defaults 100/200, the apps' defaults). */
export interface PreprocessOptions {
  low?: number;
  high?: number;
}

/**
 * Runs a named cheap preprocessor and returns the control image as 3-channel uint8 (edges replicated, as the
 * original apps do). "none" means the input already is a control map: it only goes through HWC3.
 */
export function preprocess(name: PreprocessorName, img: Image8, options: PreprocessOptions = {}): Image8<3> {
  switch (name) {
    case 'canny':
      return hwc3(canny(img, { low: options.low ?? 100, high: options.high ?? 200 }));
    case 'scribble':
      return hwc3(scribble(img));
    case 'invert':
      return invert(hwc3(img));
    case 'lineart':
      return lineart(img);
    case 'none':
      return hwc3(img);
    default:
      throw new ImageError('image_invalid_argument', `unknown preprocessor '${String(name)}'`);
  }
}
