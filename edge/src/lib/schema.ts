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

/** Parses JSON text; an empty body counts as `{}`, anything unparsable is a 400 `invalid_json`. */
export function parseJsonText(text: string): unknown {
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError('invalid_json', 'The request body is not valid JSON');
  }
}

/** Reads a JSON request body and validates it with a shared schema (400 for bad JSON, 422 for bad fields). */
export async function parseJsonBody<Schema extends z.ZodType>(
  schema: Schema,
  request: Request,
): Promise<z.infer<Schema>> {
  return parseOr422(schema, parseJsonText(await request.text()));
}
