import type { ImageRef } from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import { type ImageUrlSigner, signedImageUrl } from './signed-url.ts';

/** Content types of the image formats we store. */
export const CONTENT_TYPES = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' } as const;

/**
 * Puts image bytes in R2 under `key` and returns the reference a worker (or client) fetches it by: a signed,
 * expiring URL (images are private). `account` is kept as the owner for credential access.
 */
export async function storeImage(
  bucket: R2Bucket,
  key: string,
  bytes: Uint8Array,
  meta: {
    contentType: string;
    width: number;
    height: number;
    signer: ImageUrlSigner;
    account?: string | null;
  },
): Promise<ImageRef> {
  const sha256 = await sha256Hex(bytes);
  await bucket.put(key, bytes, {
    httpMetadata: { contentType: meta.contentType, cacheControl: 'private, max-age=3600' },
    customMetadata: {
      width: String(meta.width),
      height: String(meta.height),
      sha256,
      ...(meta.account ? { account: meta.account } : {}),
    },
  });
  return {
    key,
    url: await signedImageUrl(meta.signer, key),
    width: meta.width,
    height: meta.height,
    content_type: meta.contentType,
    sha256,
  };
}

/** URL-safe random id (base62), 24 characters by default (~143 bits). */
export function randomId(length = 24): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const bytes = crypto.getRandomValues(new Uint8Array(length * 2));
  let out = '';
  for (const byte of bytes) {
    if (byte < 248) out += alphabet[byte % 62];
    if (out.length === length) break;
  }
  return out.length === length ? out : out + randomId(length - out.length);
}

/** Deletes every stored image of a generation (its inputs, control maps and outputs). */
export async function deleteGenerationImages(bucket: R2Bucket, generationId: string): Promise<number> {
  let deleted = 0;
  for (const prefix of ['inputs', 'controls', 'outputs']) {
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ prefix: `${prefix}/${generationId}/`, cursor });
      const keys = page.objects.map((o) => o.key);
      if (keys.length > 0) await bucket.delete(keys);
      deleted += keys.length;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
  return deleted;
}
