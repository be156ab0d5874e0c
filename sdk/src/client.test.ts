import { afterEach, describe, expect, it } from 'vitest';
import { Contour, DEFAULT_BASE_URL } from './client.ts';
import { ContourError } from './errors/errors.ts';

describe('Contour', () => {
  afterEach(() => {
    delete (globalThis as { document?: unknown }).document;
  });

  it('refuses a secret key in a browser unless explicitly allowed', () => {
    (globalThis as { document?: unknown }).document = {};
    expect(() => new Contour({ apiKey: 'sk_x', baseUrl: 'http://x.test' })).toThrow(ContourError);
    expect(
      () => new Contour({ apiKey: 'sk_x', baseUrl: 'http://x.test', dangerouslyAllowBrowser: true }),
    ).not.toThrow();
    expect(() => new Contour({ clientToken: 'ct_x', baseUrl: 'http://x.test' })).not.toThrow();
  });

  it('reads the environment when given nothing', () => {
    expect(new Contour().baseUrl).toBe(process.env['CONTOUR_BASE_URL'] ?? DEFAULT_BASE_URL);
  });

  it('asks a client token source again after a 401, once', async () => {
    let minted = 0;
    const seen: string[] = [];
    const contour = new Contour({
      baseUrl: 'http://api.test',
      clientToken: () => `ct_${++minted}`,
      maxRetries: 0,
      fetch: async (_input, init) => {
        const auth = new Headers(init?.headers).get('authorization') ?? '';
        seen.push(auth);
        if (auth === 'Bearer ct_1') {
          return new Response(JSON.stringify({ error: { code: 'unauthenticated', message: 'expired' } }), {
            status: 401,
          });
        }
        return Response.json({ object: 'list', data: [] });
      },
    });
    await contour.models.list();
    await contour.models.list();
    expect(seen).toEqual(['Bearer ct_1', 'Bearer ct_2', 'Bearer ct_2']);
  });
});
