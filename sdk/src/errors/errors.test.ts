import { describe, expect, it } from 'vitest';
import {
  ApiError,
  AuthenticationError,
  errorFromResponse,
  GenerationFailedError,
  InsufficientCreditsError,
  RateLimitError,
  ServerError,
  ValidationError,
} from './errors.ts';

const body = (code: string, details: { path: string; message: string }[] = []) => ({
  error: { code, message: `msg ${code}`, details, request_id: 'req_1' },
});

describe('errorFromResponse', () => {
  it('maps statuses to typed errors keeping code, details and request id', () => {
    const validation = errorFromResponse(
      422,
      new Headers(),
      body('validation_failed', [
        { path: 'steps', message: 'too small' },
        { path: 'steps', message: 'not an integer' },
        { path: 'controls.0.image', message: 'bad image' },
      ]),
    );
    expect(validation).toBeInstanceOf(ValidationError);
    expect((validation as ValidationError).fieldErrors).toEqual({
      steps: ['too small', 'not an integer'],
      'controls.0.image': ['bad image'],
    });
    expect(validation.requestId).toBe('req_1');
    expect(errorFromResponse(401, new Headers(), body('unauthenticated'))).toBeInstanceOf(
      AuthenticationError,
    );
    expect(errorFromResponse(402, new Headers(), body('insufficient_credits'))).toBeInstanceOf(
      InsufficientCreditsError,
    );
    expect(errorFromResponse(503, new Headers(), body('backend_unavailable'))).toBeInstanceOf(ServerError);
  });

  it('gives RateLimitError the Retry-After in seconds', () => {
    const error = errorFromResponse(429, new Headers({ 'retry-after': '7' }), body('rate_limited'));
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).retryAfter).toBe(7);
  });

  it('survives bodies without an envelope (proxies) with a code derived from the status', () => {
    const error = errorFromResponse(502, new Headers({ 'x-request-id': 'r2' }), '<html>bad gateway</html>');
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('backend_error');
    expect(error.requestId).toBe('r2');
  });
});

describe('GenerationFailedError', () => {
  it('takes the code of a canceled generation without error', () => {
    const error = new GenerationFailedError({ id: 'gen_x', status: 'canceled', error: null } as never);
    expect(error.code).toBe('canceled');
    expect(error.message).toContain('gen_x canceled');
  });
});
