import type { ErrorCode, ErrorDetail } from '@contour/shared/contracts';

/** A job failure with its API error code; `retryable` tells the edge whether another attempt may succeed. */
export class JobError extends Error {
  override readonly name = 'JobError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
    /** The fields at fault, for error envelopes. */
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}
