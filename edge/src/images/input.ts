import { type ErrorDetail, imageSourceKind } from '@contour/shared/contracts';
import { BodyTooLargeError, readBodyLimited } from '@contour/shared/http';
import { base64ToBytes } from '../lib/base64.ts';
import { ApiError } from '../lib/errors.ts';

/** Largest input image in bytes (after base64 decoding or download). */
export const MAX_INPUT_IMAGE_BYTES = 10 * 1024 * 1024;
/** Time limit for fetching an image URL. */
export const IMAGE_FETCH_TIMEOUT_MS = 10_000;

/** Multipart parts by name, for `attachment:NAME` image sources. */
export type Attachments = ReadonlyMap<string, Uint8Array>;

/** Options for {@link loadImageSource}. */
export interface LoadOptions {
  /** Dotted path of the field, for errors. */
  path: string;
  attachments?: Attachments;
  /** Allows http:// and loopback URLs (local development only). */
  allowInsecureUrls: boolean;
  fetcher?: typeof fetch;
}

const invalid = (
  path: string,
  message: string,
  code: 'image_invalid' | 'image_too_large' | 'image_fetch_failed',
) => new ApiError(code, `${path}: ${message}`, [{ path, message } satisfies ErrorDetail]);

/** Base64 image data to bytes, refusing oversized input before decoding it. */
function decodeBase64(text: string, path: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if ((clean.length * 3) / 4 > MAX_INPUT_IMAGE_BYTES + 3) {
    throw invalid(path, `image is over ${MAX_INPUT_IMAGE_BYTES} bytes`, 'image_too_large');
  }
  try {
    return base64ToBytes(clean);
  } catch {
    throw invalid(path, 'image is not valid base64', 'image_invalid');
  }
}

function ipv4Octets(host: string): number[] | null {
  const parts = host.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p))) return null;
  const octets = parts.map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/**
 * True for hosts a server-side fetch must never reach (SSRF): loopback, private, link-local, CGNAT,
 * unspecified and metadata addresses, IPv6 local ranges, and names that resolve locally by convention.
 * Workers' fetch cannot reach a private network anyway; this also stops open-redirect style abuse of
 * other deployments and gives a clear error.
 */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host.endsWith('.local') ||
    host.endsWith('.internal')
  ) {
    return true;
  }
  const v4 = ipv4Octets(host);
  if (v4) {
    const [a, b] = v4 as [number, number, number, number];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  if (host.includes(':')) {
    if (host === '::' || host === '::1') return true;
    if (host.startsWith('::ffff:')) return isPrivateHost(host.slice(7)) || !host.slice(7).includes('.');
    return /^(fc|fd|fe8|fe9|fea|feb)/.test(host);
  }
  return false;
}

/** Reads a fetched image, refusing more than {@link MAX_INPUT_IMAGE_BYTES} (a 422 on the field at `path`). */
export async function readLimited(response: Response, path: string): Promise<Uint8Array> {
  try {
    return await readBodyLimited(response, MAX_INPUT_IMAGE_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw invalid(path, `image ${error.message}`, 'image_too_large');
    throw error;
  }
}

async function fetchImage(url: string, options: LoadOptions): Promise<Uint8Array> {
  const { path } = options;
  const parsed = new URL(url);
  if (parsed.protocol !== 'https:' && !(options.allowInsecureUrls && parsed.protocol === 'http:')) {
    throw invalid(path, 'image URLs must use https', 'image_fetch_failed');
  }
  if (!options.allowInsecureUrls && isPrivateHost(parsed.hostname)) {
    throw invalid(
      path,
      `image URL host ${parsed.hostname} is not reachable from Contour`,
      'image_fetch_failed',
    );
  }
  if (parsed.username || parsed.password)
    throw invalid(path, 'image URLs must not carry credentials', 'image_fetch_failed');
  let response: Response;
  try {
    response = await (options.fetcher ?? fetch)(parsed.toString(), {
      redirect: 'manual',
      signal: AbortSignal.timeout(IMAGE_FETCH_TIMEOUT_MS),
      headers: { accept: 'image/png,image/jpeg,image/webp' },
    });
  } catch (error) {
    const reason =
      error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'could not be fetched';
    throw invalid(path, `image URL ${reason}`, 'image_fetch_failed');
  }
  if (response.status >= 300 && response.status < 400) {
    throw invalid(path, 'image URL redirects; give the final URL', 'image_fetch_failed');
  }
  if (!response.ok) throw invalid(path, `image URL answered ${response.status}`, 'image_fetch_failed');
  return readLimited(response, path);
}

/** Reads an image source (data URL, base64, URL or attachment) into bytes, enforcing the byte limit. */
export async function loadImageSource(source: string, options: LoadOptions): Promise<Uint8Array> {
  const { path } = options;
  switch (imageSourceKind(source)) {
    case 'data_url':
      return decodeBase64(source.slice(source.indexOf(',') + 1), path);
    case 'base64':
      return decodeBase64(source, path);
    case 'url':
      return fetchImage(source, options);
    case 'attachment': {
      const name = source.slice('attachment:'.length);
      const bytes = options.attachments?.get(name);
      if (!bytes) throw invalid(path, `no multipart part named '${name}'`, 'image_invalid');
      if (bytes.length > MAX_INPUT_IMAGE_BYTES) {
        throw invalid(path, `image is over ${MAX_INPUT_IMAGE_BYTES} bytes`, 'image_too_large');
      }
      return bytes;
    }
    default:
      throw invalid(path, 'not an accepted image form', 'image_invalid');
  }
}
