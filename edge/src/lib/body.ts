import { BodyReadAbortedError, BodyTooLargeError, readBodyLimited } from '@contour/shared/http';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env.ts';
import { ApiError } from './errors.ts';
import { parseJsonText } from './schema.ts';

/** Largest JSON or multipart body the image routes read (inline images and uploads). */
export const MAX_BODY_BYTES = 45 * 1024 * 1024;
/** Largest body of every other route (small JSON documents). */
export const MAX_SMALL_BODY_BYTES = 256 * 1024;
/** Time a client has to send its whole body (slow senders hold a request open otherwise). */
export const BODY_READ_TIMEOUT_MS = 30_000;

/** Routes that take images inline or as multipart uploads. */
const IMAGE_ROUTES = /^\/v1\/(generations|preprocess)$/;

/** The bare media type of a `content-type` header (`application/json; charset=utf-8` -> `application/json`). */
export function mediaType(header: string | null | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Largest Replicate callback: a prediction with its logs (signed by Replicate, so not a customer's input). */
export const MAX_CALLBACK_BODY_BYTES = 4 * 1024 * 1024;

/** Body limit of a path. */
export function bodyLimitFor(path: string): number {
  if (IMAGE_ROUTES.test(path)) return MAX_BODY_BYTES;
  return path === '/v1/webhooks/replicate' ? MAX_CALLBACK_BODY_BYTES : MAX_SMALL_BODY_BYTES;
}

/**
 * Reads every request body once, bounded while streaming (chunked bodies carry no `content-length`) and in
 * time, and replaces the request with the buffered copy, so no route can read past the limit. A body over
 * the limit is a 413, one shorter than its `content-length` or too slow a 400, and a non-empty body that is
 * not JSON (or multipart, on the image routes) a 415: all in the envelope.
 */
export const bufferBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const request = c.req.raw;
  if (request.method === 'GET' || request.method === 'HEAD' || !request.body) return next();
  const path = new URL(request.url).pathname;
  const limit = bodyLimitFor(path);
  let bytes: Uint8Array;
  try {
    bytes = await readBodyLimited(request, limit, { signal: AbortSignal.timeout(BODY_READ_TIMEOUT_MS) });
  } catch (error) {
    if (error instanceof BodyTooLargeError) {
      throw new ApiError('payload_too_large', `Body is over ${limit} bytes for ${path}`);
    }
    if (error instanceof BodyReadAbortedError) {
      throw new ApiError(
        'invalid_request',
        `The body did not arrive within ${BODY_READ_TIMEOUT_MS / 1000} s`,
      );
    }
    throw new ApiError(
      'invalid_request',
      'The request body could not be read (shorter than its Content-Length?)',
    );
  }
  // Replicate's callbacks are judged by their signature first (the route parses the JSON itself).
  if (bytes.length > 0 && path !== '/v1/webhooks/replicate') {
    const type = mediaType(request.headers.get('content-type'));
    const multipartOk = IMAGE_ROUTES.test(path) && type === 'multipart/form-data';
    if (type !== 'application/json' && !multipartOk) {
      throw new ApiError(
        'unsupported_media_type',
        IMAGE_ROUTES.test(path)
          ? 'Send Content-Type: application/json or multipart/form-data'
          : 'Send Content-Type: application/json',
      );
    }
  }
  const headers = new Headers(request.headers);
  headers.set('content-length', String(bytes.length));
  c.req.raw = new Request(request.url, { method: request.method, headers, body: bytes });
  return next();
};

/** A parsed request body: the JSON document and any uploaded files by part name. */
export interface ParsedBody {
  json: unknown;
  attachments: Map<string, Uint8Array>;
}

/**
 * Reads `application/json`, or `multipart/form-data` with the JSON in a `request` part and files in other
 * parts (referenced from the JSON as `attachment:NAME`). Anything else is a 415.
 */
export async function readBody(request: Request): Promise<ParsedBody> {
  const length = Number(request.headers.get('content-length') ?? 0);
  if (length > MAX_BODY_BYTES)
    throw new ApiError('payload_too_large', `Body is over ${MAX_BODY_BYTES} bytes`);
  const type = mediaType(request.headers.get('content-type'));
  if (type === 'application/json') {
    return { json: parseJsonText(await request.text()), attachments: new Map() };
  }
  if (type === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      throw new ApiError('invalid_request', 'The multipart body could not be parsed');
    }
    const attachments = new Map<string, Uint8Array>();
    let json: unknown;
    for (const [name, value] of form.entries()) {
      if (typeof value === 'string') {
        if (name !== 'request') continue;
        try {
          json = JSON.parse(value);
        } catch {
          throw new ApiError('invalid_json', "The multipart 'request' part is not valid JSON", [
            { path: 'request', message: 'not valid JSON' },
          ]);
        }
      } else {
        attachments.set(name, new Uint8Array(await value.arrayBuffer()));
      }
    }
    if (json === undefined) {
      throw new ApiError('invalid_request', "Multipart bodies need a 'request' part holding the JSON", [
        { path: 'request', message: 'missing' },
      ]);
    }
    return { json, attachments };
  }
  throw new ApiError('unsupported_media_type', 'Send application/json or multipart/form-data');
}
