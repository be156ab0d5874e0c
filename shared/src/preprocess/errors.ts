/** Machine-readable reasons an image is refused; the edge maps each to a 4xx response. */
export const IMAGE_ERROR_CODES = [
  'image_unsupported_type',
  'image_corrupt',
  'image_truncated',
  'image_too_large',
  'image_invalid_argument',
] as const;

/** One of {@link IMAGE_ERROR_CODES}. */
export type ImageErrorCode = (typeof IMAGE_ERROR_CODES)[number];

/** Error thrown for any image that cannot be decoded, encoded or processed. */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  constructor(
    readonly code: ImageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
