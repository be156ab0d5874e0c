import { z } from 'zod';

/**
 * The closed list of machine-readable error codes the API returns. Clients switch on `code`;
 * the HTTP status is fixed per code so a code never changes meaning between endpoints.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_json: 400,
  unauthenticated: 401,
  insufficient_credits: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_conflict: 409,
  canceled: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_failed: 422,
  image_invalid: 422,
  image_too_large: 422,
  image_fetch_failed: 422,
  idempotency_mismatch: 422,
  model_not_available: 422,
  rate_limited: 429,
  queue_full: 429,
  internal_error: 500,
  backend_error: 502,
  backend_unavailable: 503,
  timeout: 504,
} as const satisfies Record<string, number>;

/** One machine-readable error code (see {@link ERROR_STATUS} for its HTTP status). */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Zod enum of every error code, in declaration order. */
export const ErrorCodeSchema = z
  .enum(Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]])
  .meta({ id: 'ErrorCode', description: 'Machine-readable error code; the list is closed.' });

/** One field at fault: `path` is a dotted path into the request body (e.g. `controls.0.params.low`). */
export const ErrorDetailSchema = z
  .object({
    path: z.string().describe('Dotted path of the field at fault, "" for the whole body.'),
    message: z.string(),
    suggestions: z.array(z.string()).optional().describe('Valid values close to the rejected one.'),
  })
  .meta({ id: 'ErrorDetail' });
export type ErrorDetail = z.infer<typeof ErrorDetailSchema>;

/** The error body, also embedded in failed generations and events. */
export const ApiErrorBodySchema = z
  .object({
    code: ErrorCodeSchema,
    message: z.string(),
    details: z.array(ErrorDetailSchema).default([]),
    request_id: z.string().optional(),
    retryable: z.boolean().optional().describe('True when the same request may succeed later.'),
  })
  .meta({ id: 'ApiErrorBody' });
export type ApiErrorBody = z.infer<typeof ApiErrorBodySchema>;

/** Every non-2xx response body: `{ error: { code, message, details[], request_id } }`. */
export const ErrorEnvelopeSchema = z.object({ error: ApiErrorBodySchema }).meta({ id: 'ErrorEnvelope' });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;

/** Dotted path as clients address fields: numbers for array items, no leading dot. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  return path.map((segment) => String(segment)).join('.');
}

/** Turns zod issues into envelope details, keeping any `suggestions` a refinement attached. */
export function detailsFromZodError(error: { issues: readonly z.core.$ZodIssue[] }): ErrorDetail[] {
  return error.issues.map((issue) => {
    const suggestions = (issue as { params?: { suggestions?: unknown } }).params?.suggestions;
    const detail: ErrorDetail = { path: formatIssuePath(issue.path), message: issue.message };
    if (Array.isArray(suggestions)) detail.suggestions = suggestions.map(String);
    return detail;
  });
}

/** Longest message, and longest path or detail message, an error envelope carries (input is never echoed at length). */
export const MAX_ERROR_MESSAGE_CHARS = 500;
/** Most details one envelope lists. */
export const MAX_ERROR_DETAILS = 20;

/** `text` cut to `max` characters with a marker saying how much was left out. */
export function truncateText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}

function boundedDetail(detail: ErrorDetail): ErrorDetail {
  const bounded: ErrorDetail = {
    path: truncateText(detail.path, 200),
    message: truncateText(detail.message, MAX_ERROR_MESSAGE_CHARS),
  };
  if (detail.suggestions)
    bounded.suggestions = detail.suggestions.slice(0, 10).map((s) => truncateText(s, 100));
  return bounded;
}

/** Builds an error envelope; `details` name the fields at fault. Long messages and lists are cut short. */
export function errorEnvelope(
  code: ErrorCode,
  message: string,
  options: { details?: ErrorDetail[]; requestId?: string; retryable?: boolean } = {},
): ErrorEnvelope {
  const details = (options.details ?? []).slice(0, MAX_ERROR_DETAILS).map(boundedDetail);
  const error: ApiErrorBody = { code, message: truncateText(message, MAX_ERROR_MESSAGE_CHARS), details };
  if (options.requestId !== undefined) error.request_id = options.requestId;
  if (options.retryable !== undefined) error.retryable = options.retryable;
  return { error };
}

/** The 422 envelope for a failed schema parse. */
export function validationErrorEnvelope(
  error: { issues: readonly z.core.$ZodIssue[] },
  requestId?: string,
): ErrorEnvelope {
  const details = detailsFromZodError(error);
  const first = details[0];
  const message = first
    ? `Invalid request: ${first.path || 'body'}: ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`
    : 'Invalid request';
  return errorEnvelope('validation_failed', message, { details, requestId });
}

/**
 * A query-string integer in `min..max`: plain decimal digits only, so `1.5`, `-1`, `1e400` or `0x10` are a
 * 422 on the parameter rather than a number that reaches SQL.
 */
export function queryIntSchema(min: number, max: number) {
  return z
    .string()
    .regex(/^\d{1,9}$/, `must be an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.int().min(min).max(max));
}
