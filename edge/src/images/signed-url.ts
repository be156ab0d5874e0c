import { timingSafeEqual } from '../auth/compare.ts';
import type { Bindings } from '../env.ts';

/** Lifetime of image URLs in API responses when `IMAGE_URL_TTL_S` is unset. */
export const DEFAULT_IMAGE_URL_TTL_S = 3600;
/** Lifetime of image URLs in jobs (a worker or Replicate fetches them) and in webhook payloads (retried for hours). */
export const LONG_IMAGE_URL_TTL_S = 24 * 3600;
/**
 * Expiry times are rounded up to this step, so polling a generation returns the same URLs for a while
 * (browsers and CDNs can cache them); a URL lives between its TTL and TTL + step.
 */
export const EXPIRY_STEP_S = 600;

/** What signing image URLs needs: the origin, the HMAC secret and the lifetime. */
export interface ImageUrlSigner {
  baseUrl: string;
  secret: string;
  ttlS: number;
}

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    keys.set(secret, key);
  }
  return key;
}

function base64Url(bytes: ArrayBuffer): string {
  let binary = '';
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The HMAC-SHA256 signature (base64url) of an image key and its expiry. */
export async function imageSignature(secret: string, key: string, exp: number): Promise<string> {
  const mac = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(secret),
    new TextEncoder().encode(`${key}\n${exp}`),
  );
  return base64Url(mac);
}

/** The HMAC secret of image URLs: `IMAGE_SIGNING_SECRET`, else one derived from the worker signing secret. */
export function imageSigningSecret(
  env: Pick<Bindings, 'IMAGE_SIGNING_SECRET' | 'WORKER_SIGNING_SECRET'>,
): string {
  return env.IMAGE_SIGNING_SECRET || `contour-image-urls:${env.WORKER_SIGNING_SECRET}`;
}

/** A signer for URLs handed to API clients (`IMAGE_URL_TTL_S`, default one hour) or, with `ttlS`, any lifetime. */
export function imageUrlSigner(
  env: Pick<Bindings, 'IMAGE_SIGNING_SECRET' | 'WORKER_SIGNING_SECRET' | 'IMAGE_URL_TTL_S'>,
  baseUrl: string,
  ttlS?: number,
): ImageUrlSigner {
  const configured = Number(env.IMAGE_URL_TTL_S);
  const ttl = ttlS ?? (Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_IMAGE_URL_TTL_S);
  return { baseUrl, secret: imageSigningSecret(env), ttlS: ttl };
}

/** `<base>/v1/images/<key>?exp=<unix s>&sig=<hmac>`: readable without credentials until `exp`. */
export async function signedImageUrl(
  signer: ImageUrlSigner,
  key: string,
  nowMs = Date.now(),
): Promise<string> {
  const exp = Math.ceil((nowMs / 1000 + signer.ttlS) / EXPIRY_STEP_S) * EXPIRY_STEP_S;
  const sig = await imageSignature(signer.secret, key, exp);
  return `${signer.baseUrl}/v1/images/${key}?exp=${exp}&sig=${sig}`;
}

/** Why a signed image URL is refused, or null when its signature is good and it has not expired. */
export async function signedUrlProblem(
  secret: string,
  key: string,
  exp: string | undefined,
  sig: string | undefined,
  nowMs = Date.now(),
): Promise<string | null> {
  if (!exp || !sig || !/^\d{1,12}$/.test(exp) || sig.length > 64) return 'malformed signature';
  const expected = await imageSignature(secret, key, Number(exp));
  if (!timingSafeEqual(sig, expected)) return 'bad signature';
  if (Number(exp) * 1000 <= nowMs) return 'this image URL has expired';
  return null;
}
