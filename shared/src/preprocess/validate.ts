import { ImageError } from './errors.ts';
import type { Image8 } from './image.ts';

/** Throws `image_invalid_argument` unless `img` is a well-formed 8-bit image with one of `allowedChannels`. */
export function assertImage(img: Image8, allowedChannels: readonly number[], where: string): void {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new ImageError('image_invalid_argument', `${where}: width and height must be positive integers`);
  }
  if (!allowedChannels.includes(channels)) {
    throw new ImageError(
      'image_invalid_argument',
      `${where}: expected ${allowedChannels.join(' or ')} channels, got ${channels}`,
    );
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * channels) {
    throw new ImageError(
      'image_invalid_argument',
      `${where}: data must be a Uint8Array of width * height * channels = ${width * height * channels} bytes`,
    );
  }
}
