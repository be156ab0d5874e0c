import { z } from 'zod';

/** Longest accepted image string: ~10 MiB of bytes once base64 is decoded. */
export const MAX_IMAGE_SOURCE_CHARS = 14_000_000;

const DATA_URL_PREFIX = /^data:image\/(png|jpeg|jpg|webp);base64,/;
const ATTACHMENT = /^attachment:[A-Za-z0-9_.\-[\]]{1,128}$/;

/**
 * True when `value[from..]` is standard base64 of at least `minChars` characters (optional `=` padding).
 * A plain loop, not a regex: megabytes of input must cost linear time and no regex-engine stack.
 */
export function isBase64Text(value: string, from = 0, minChars = 1): boolean {
  let end = value.length;
  let padding = 0;
  while (end > from && value.charCodeAt(end - 1) === 61 /* = */ && padding < 2) {
    end--;
    padding++;
  }
  if (end - from < minChars) return false;
  for (let i = from; i < end; i++) {
    const c = value.charCodeAt(i);
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
    if (!ok) return false;
  }
  return true;
}

/** How an image string is to be read. */
export type ImageSourceKind = 'data_url' | 'base64' | 'url' | 'attachment';

/** Classifies an image string, or returns null when it is none of the accepted forms. */
export function imageSourceKind(value: string): ImageSourceKind | null {
  if (value.startsWith('data:')) {
    const prefix = DATA_URL_PREFIX.exec(value.slice(0, 64));
    return prefix && isBase64Text(value, prefix[0].length) ? 'data_url' : null;
  }
  if (/^https?:\/\//i.test(value)) {
    try {
      new URL(value);
      return 'url';
    } catch {
      return null;
    }
  }
  if (ATTACHMENT.test(value)) return 'attachment';
  return isBase64Text(value, 0, 16) ? 'base64' : null;
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
