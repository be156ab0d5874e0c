import { validationErrorEnvelope } from '@contour/shared/contracts';
import type { z } from 'zod';
import { ApiError } from './errors.ts';

/** Parses with a shared schema or throws the 422 envelope naming every field at fault. */
export function parseOr422<Schema extends z.ZodType>(schema: Schema, value: unknown): z.infer<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { error } = validationErrorEnvelope(result.error);
  throw new ApiError('validation_failed', error.message, error.details);
}
