import { z } from 'zod';

/** Longest accepted image string: ~10 MiB of bytes once base64 is decoded. */
export const MAX_IMAGE_SOURCE_CHARS = 14_000_000;

const DATA_URL = /^data:image\/(png|jpeg|jpg|webp);base64,[A-Za-z0-9+/]+={0,2}$/;
const BARE_BASE64 = /^[A-Za-z0-9+/]{16,}={0,2}$/;
const ATTACHMENT = /^attachment:[A-Za-z0-9_.\-[\]]{1,128}$/;

/** How an image string is to be read. */
export type ImageSourceKind = 'data_url' | 'base64' | 'url' | 'attachment';

/** Classifies an image string, or returns null when it is none of the accepted forms. */
export function imageSourceKind(value: string): ImageSourceKind | null {
  if (value.startsWith('data:')) return DATA_URL.test(value) ? 'data_url' : null;
  if (/^https?:\/\//i.test(value)) {
    try {
      new URL(value);
      return 'url';
    } catch {
      return null;
    }
  }
  if (ATTACHMENT.test(value)) return 'attachment';
  return BARE_BASE64.test(value) ? 'base64' : null;
}

/**
 * An input image: a `data:image/...;base64,` URL, bare base64, an http(s) URL the edge fetches
 * (https only outside local dev, private targets refused), or `attachment:NAME` naming a part of
 * a multipart upload.
 */
export const ImageSourceSchema = z
  .string()
  .max(MAX_IMAGE_SOURCE_CHARS, 'image is over 10 MiB')
  .refine((value) => imageSourceKind(value) !== null, {
    message: 'image must be a data:image/(png|jpeg|webp);base64 URL, base64, an https URL or attachment:NAME',
  })
  .meta({ id: 'ImageSource' });
