import { ERROR_STATUS, type ErrorCode, type ErrorDetail, errorEnvelope } from '@contour/shared/contracts';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** A failure with a machine-readable code; the app's error handler turns it into the envelope. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The HTTP status fixed for this code. */
  get status(): ContentfulStatusCode {
    return ERROR_STATUS[this.code] as ContentfulStatusCode;
  }
}

/** Sends an error envelope with the status of its code and the request id. */
export function sendError(
  c: Context,
  code: ErrorCode,
  message: string,
  details: ErrorDetail[] = [],
): Response {
  const requestId = c.get('requestId') as string | undefined;
  return c.json(
    errorEnvelope(code, message, { details, requestId }),
    ERROR_STATUS[code] as ContentfulStatusCode,
  );
}

/** A 500 envelope built without the framework, for failures of the error path itself. */
export function fallbackErrorResponse(requestId?: string): Response {
  const id = requestId ?? crypto.randomUUID();
  return new Response(
    JSON.stringify(errorEnvelope('internal_error', 'Internal error; it has been logged', { requestId: id })),
    { status: 500, headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': id } },
  );
}
