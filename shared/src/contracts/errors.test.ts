import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ERROR_STATUS, ErrorEnvelopeSchema, errorEnvelope, validationErrorEnvelope } from './errors.ts';

describe('error envelope', () => {
  it('maps every code to a 4xx or 5xx status', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
    expect(ERROR_STATUS.validation_failed).toBe(422);
    expect(ERROR_STATUS.insufficient_credits).toBe(402);
  });

  it('builds a 422 envelope naming each field at fault', () => {
    const schema = z.object({ a: z.object({ b: z.array(z.int()) }), c: z.string() });
    const result = schema.safeParse({ a: { b: [1, 'x'] }, c: 3 });
    const envelope = validationErrorEnvelope(result.error!, 'req_1');
    expect(ErrorEnvelopeSchema.parse(envelope)).toEqual(envelope);
    expect(envelope.error.code).toBe('validation_failed');
    expect(envelope.error.request_id).toBe('req_1');
    expect(envelope.error.details.map((d) => d.path)).toEqual(['a.b.1', 'c']);
    expect(envelope.error.message).toMatch(/^Invalid request: a\.b\.1: .* \(and 1 more\)$/);
  });

  it('refuses codes outside the closed list', () => {
    expect(ErrorEnvelopeSchema.safeParse({ error: { code: 'oops', message: 'x' } }).success).toBe(false);
    expect(ErrorEnvelopeSchema.parse(errorEnvelope('not_found', 'no such generation')).error.details).toEqual(
      [],
    );
  });
});
