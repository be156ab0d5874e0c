import { validationErrorEnvelope } from '@contour/shared/contracts';
import { zValidator } from '@hono/zod-validator';
import type { ValidationTargets } from 'hono';
import type { z } from 'zod';
import { ApiError } from './errors.ts';

/**
 * zod validation for a request part that answers with the shared 422 envelope (every field at
 * fault named) instead of the validator's default body. Malformed JSON is a 400 `invalid_json`.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return zValidator(target, schema, (result, c) => {
    if (!result.success) {
      const requestId = c.get('requestId') as string | undefined;
      return c.json(validationErrorEnvelope(result.error, requestId), 422);
    }
  });
}

/** Re-throws hono's JSON parse failure as our 400. */
export function isMalformedJsonError(error: unknown): boolean {
  return error instanceof Error && /Malformed JSON/i.test(error.message);
}

export { ApiError };
