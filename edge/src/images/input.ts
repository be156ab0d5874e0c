import { type ErrorDetail, imageSourceKind } from '@contour/shared/contracts';
import { BodyReadAbortedError, BodyTooLargeError, readBodyLimited } from '@contour/shared/http';
import { base64ToBytes } from '../lib/base64.ts';
import { ApiError } from '../lib/errors.ts';
import { publicUrlProblem } from '../lib/public-url.ts';

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
  /** DNS-over-HTTPS endpoint image hosts are resolved through before the fetch (production). */
  dohUrl?: string;
  /** Deadline for the whole fetch, body included (default {@link IMAGE_FETCH_TIMEOUT_MS}). */
  timeoutMs?: number;
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

/** Re-exported for callers and tests that judge a host without fetching. */
export { isPrivateHost } from '@contour/shared/http';

/**
 * Reads a fetched image, refusing more than {@link MAX_INPUT_IMAGE_BYTES} (a 422 on the field at `path`).
 * `signal` bounds the whole read: a server that drips its body is an `image_fetch_failed`, not a hang.
 */
export async function readLimited(
  response: Response,
  path: string,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  try {
    return await readBodyLimited(response, MAX_INPUT_IMAGE_BYTES, signal ? { signal } : {});
  } catch (error) {
    if (error instanceof BodyTooLargeError) throw invalid(path, `image ${error.message}`, 'image_too_large');
    const reason = error instanceof BodyReadAbortedError ? error.message : 'body could not be read';
    throw invalid(path, `image URL ${reason}`, 'image_fetch_failed');
  }
}

async function fetchImage(url: string, options: LoadOptions): Promise<Uint8Array> {
  const { path } = options;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(path, 'not a valid URL', 'image_fetch_failed');
  }
  const problem = await publicUrlProblem(parsed, {
    allowInsecure: options.allowInsecureUrls,
    dohUrl: options.dohUrl ?? '',
    ...(options.fetcher ? { fetcher: options.fetcher } : {}),
  });
  if (problem) throw invalid(path, `image ${problem}`, 'image_fetch_failed');
  // One deadline for connecting, headers and the whole body.
  const signal = AbortSignal.timeout(options.timeoutMs ?? IMAGE_FETCH_TIMEOUT_MS);
  let response: Response;
  try {
    response = await (options.fetcher ?? fetch)(parsed.toString(), {
      // Redirects are refused, not followed: a public URL could send the fetch to a private one.
      redirect: 'manual',
      signal,
      headers: { accept: 'image/png,image/jpeg,image/webp' },
    });
  } catch (error) {
    const reason =
      error instanceof Error && error.name === 'TimeoutError' ? 'timed out' : 'could not be fetched';
    throw invalid(path, `image URL ${reason}`, 'image_fetch_failed');
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel().catch(() => undefined);
    throw invalid(path, 'image URL redirects; give the final URL', 'image_fetch_failed');
  }
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined);
    throw invalid(path, `image URL answered ${response.status}`, 'image_fetch_failed');
  }
  return readLimited(response, path, signal);
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
