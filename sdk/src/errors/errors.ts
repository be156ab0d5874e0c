import type { ApiErrorBody, ErrorCode, ErrorDetail, Generation } from '@contour/shared/contracts';

/** Base class of every error the SDK throws, so `catch (e) { if (e instanceof ContourError) ... }` works. */
export class ContourError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** What the SDK knows about a non-2xx response. */
export interface ApiErrorInit {
  status: number;
  body: ApiErrorBody;
  headers: Headers;
}

/**
 * The API answered with an error envelope (`{ error: { code, message, details, request_id } }`).
 * Subclasses narrow the common cases; switch on `code` for the rest.
 */
export class ApiError extends ContourError {
  /** HTTP status. */
  readonly status: number;
  /** Machine-readable code (see `ERROR_STATUS` in the contracts). */
  readonly code: ErrorCode;
  /** Fields at fault, as the API listed them. */
  readonly details: ErrorDetail[];
  /** The `x-request-id` to quote when asking for support. */
  readonly requestId: string | undefined;
  /** Response headers (rate-limit headers, `retry-after`...). */
  readonly headers: Headers;

  constructor(init: ApiErrorInit) {
    super(`${init.body.message} (${init.body.code}, HTTP ${init.status})`);
    this.status = init.status;
    this.code = init.body.code;
    this.details = init.body.details ?? [];
    this.requestId = init.body.request_id ?? init.headers.get('x-request-id') ?? undefined;
    this.headers = init.headers;
  }
}

/** 400/422: the request was rejected; `fieldErrors` maps each dotted field path to its messages. */
export class ValidationError extends ApiError {
  /** `{ 'controls.0.image': ['image must be ...'] }`; `''` is the body as a whole. */
  readonly fieldErrors: Record<string, string[]>;

  constructor(init: ApiErrorInit) {
    super(init);
    const fieldErrors: Record<string, string[]> = {};
    for (const detail of this.details) {
      fieldErrors[detail.path] = [...(fieldErrors[detail.path] ?? []), detail.message];
    }
    this.fieldErrors = fieldErrors;
  }
}

/** 401: missing, unknown, revoked or expired API key or client token. */
export class AuthenticationError extends ApiError {}

/** 403: the credential is valid but may not do this (scope, client-token origin or limits). */
export class PermissionDeniedError extends ApiError {}

/** 404: no such generation (or route). */
export class NotFoundError extends ApiError {}

/** 409: the request conflicts with the resource's state (e.g. an idempotency key still in flight). */
export class ConflictError extends ApiError {}

/** 402: the account (or client token) cannot cover the generation's cost. */
export class InsufficientCreditsError extends ApiError {}

/** 429: too many requests; `retryAfter` is how long the API asked to wait, in seconds. */
export class RateLimitError extends ApiError {
  /** Seconds to wait before retrying, from `Retry-After` (undefined when the API sent none). */
  readonly retryAfter: number | undefined;

  constructor(init: ApiErrorInit, retryAfterMs: number | undefined) {
    super(init);
    this.retryAfter = retryAfterMs === undefined ? undefined : retryAfterMs / 1000;
  }
}

/** 5xx: the API or its GPU backend failed; `retryable` requests were already retried. */
export class ServerError extends ApiError {}

/** The request (or the wait for a generation) took longer than its timeout. */
export class TimeoutError extends ContourError {
  constructor(
    message: string,
    /** The limit that was exceeded, in milliseconds. */
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The API could not be reached (DNS, refused connection, reset) even after retries. */
export class ConnectionError extends ContourError {}

/** `generations.run` ended with a failed or canceled generation; `generation` has the details. */
export class GenerationFailedError extends ContourError {
  /** The error the generation ended with (`canceled` for canceled ones). */
  readonly code: ErrorCode;

  constructor(readonly generation: Generation) {
    const error = generation.error;
    const code: ErrorCode = error?.code ?? (generation.status === 'canceled' ? 'canceled' : 'internal_error');
    super(`Generation ${generation.id} ${generation.status}: ${error?.message ?? generation.status}`);
    this.code = code;
  }
}

/** Parses a `Retry-After` header (delta-seconds or an HTTP date) into milliseconds from `nowMs`. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // HTTP-dates always name the weekday and month; this keeps `Date.parse` from reading "-1" as a year.
  const date = /[a-z]{3}/i.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

function isErrorBody(value: unknown): value is { error: ApiErrorBody } {
  const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof error?.code === 'string' && typeof error.message === 'string';
}

/** Fallback codes for responses that did not carry an envelope (proxies, load balancers). */
function codeForStatus(status: number): ErrorCode {
  if (status === 401) return 'unauthenticated';
  if (status === 402) return 'insufficient_credits';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 409) return 'conflict';
  if (status === 413) return 'payload_too_large';
  if (status === 422) return 'validation_failed';
  if (status === 429) return 'rate_limited';
  if (status === 502) return 'backend_error';
  if (status === 503) return 'backend_unavailable';
  if (status === 504) return 'timeout';
  return status >= 500 ? 'internal_error' : 'invalid_request';
}

/** Builds the typed error for a non-2xx response from its status, headers and (parsed) body. */
export function errorFromResponse(status: number, headers: Headers, body: unknown): ApiError {
  const envelope: ApiErrorBody = isErrorBody(body)
    ? { ...body.error, details: body.error.details ?? [] }
    : { code: codeForStatus(status), message: `HTTP ${status}`, details: [] };
  const init: ApiErrorInit = { status, body: envelope, headers };
  if (status === 400 || status === 422) return new ValidationError(init);
  if (status === 401) return new AuthenticationError(init);
  if (status === 402) return new InsufficientCreditsError(init);
  if (status === 403) return new PermissionDeniedError(init);
  if (status === 404) return new NotFoundError(init);
  if (status === 409) return new ConflictError(init);
  if (status === 429) return new RateLimitError(init, parseRetryAfter(headers.get('retry-after')));
  if (status >= 500) return new ServerError(init);
  return new ApiError(init);
}
