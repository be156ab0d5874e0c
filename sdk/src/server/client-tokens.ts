import type { ClientToken } from '@contour/shared/contracts';
import { Contour, type ContourOptions } from '../client.ts';
import { ApiError, ContourError } from '../errors/errors.ts';

/** Lifetime of minted client tokens unless configured, in seconds. */
export const DEFAULT_CLIENT_TOKEN_TTL_S = 900;

/** What the browser receives from the token endpoint. */
export interface ClientTokenResponse {
  token: string;
  expires_at: string;
  origin: string;
  max_spend: number;
  max_generations: number;
}

/** Options of {@link createClientTokenHandler}. */
export interface ClientTokenHandlerOptions {
  /** Your secret key (`sk_...`, with the `client_tokens:create` scope); stays on the server. */
  apiKey: string;
  /** Browser origins allowed to get a token (the request's `Origin` must be one). */
  allowedOrigins: readonly string[];
  /** Credits one token may spend in total. */
  maxSpend: number;
  /** Generations one token may create (default: the API's). */
  maxGenerations?: number;
  /** Token lifetime in seconds (default {@link DEFAULT_CLIENT_TOKEN_TTL_S}). */
  expiresIn?: number;
  /**
   * Your own check (session cookie, CSRF token...) before a token is minted; return false to refuse
   * with 401. Without it, any page of an allowed origin can get tokens.
   */
  authorize?: (request: Request) => boolean | Promise<boolean>;
  /** Options of the Contour client used to mint (baseUrl, fetch, retries). */
  client?: Omit<ContourOptions, 'apiKey' | 'clientToken'>;
}

function json(body: unknown, status: number, origin: string | null): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (origin) {
    headers['access-control-allow-origin'] = origin;
    headers['vary'] = 'Origin';
  }
  return new Response(JSON.stringify(body), { status, headers });
}

function refuse(code: string, message: string, status: number, origin: string | null): Response {
  return json({ error: { code, message, details: [] } }, status, origin);
}

/**
 * A fetch handler (`(request) => Response`, as in Workers, Deno, Bun, Next.js route handlers) that mints
 * a Contour client token for the calling page: checks the `Origin` against `allowedOrigins` and your
 * `authorize` hook, then calls `POST /v1/client-tokens` with your secret key, which never leaves the
 * server. Answers `POST` (mint) and `OPTIONS` (CORS preflight for cross-origin pages).
 */
export function createClientTokenHandler(
  options: ClientTokenHandlerOptions,
): (request: Request) => Promise<Response> {
  const contour = new Contour({ ...options.client, apiKey: options.apiKey });
  const allowed = new Set(options.allowedOrigins);
  return async (request) => {
    const origin = request.headers.get('origin');
    const allowedOrigin = origin !== null && allowed.has(origin) ? origin : null;
    if (request.method === 'OPTIONS') {
      if (!allowedOrigin) return new Response(null, { status: 403 });
      return new Response(null, {
        status: 204,
        headers: {
          'access-control-allow-origin': allowedOrigin,
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': 'content-type',
          'access-control-max-age': '600',
          vary: 'Origin',
        },
      });
    }
    if (request.method !== 'POST')
      return refuse('method_not_allowed', 'POST to mint a client token', 405, null);
    if (!allowedOrigin) {
      return refuse('forbidden', `Origin ${origin ?? '(none)'} may not get client tokens`, 403, null);
    }
    if (options.authorize && !(await options.authorize(request))) {
      return refuse('unauthenticated', 'Not signed in', 401, allowedOrigin);
    }
    let minted: ClientToken;
    try {
      minted = await contour.clientTokens.create({
        origin: allowedOrigin,
        max_spend: options.maxSpend,
        expires_in: options.expiresIn ?? DEFAULT_CLIENT_TOKEN_TTL_S,
        ...(options.maxGenerations === undefined ? {} : { max_generations: options.maxGenerations }),
      });
    } catch (error) {
      // Never forward the API's answer to the secret-key call as is; keep its code only.
      const code = error instanceof ApiError ? error.code : 'backend_unavailable';
      return refuse(code, 'Could not mint a client token', 502, allowedOrigin);
    }
    const body: ClientTokenResponse = {
      token: minted.token,
      expires_at: minted.expires_at,
      origin: minted.origin,
      max_spend: minted.max_spend,
      max_generations: minted.max_generations,
    };
    return json(body, 200, allowedOrigin);
  };
}

/**
 * The same handler for Hono: `app.post('/contour-token', clientTokenHandler({ ... }))` (also mount it for
 * `OPTIONS` when pages on other origins call it). Typed structurally, so the SDK does not depend on Hono.
 */
export function clientTokenHandler(
  options: ClientTokenHandlerOptions,
): (c: { req: { raw: Request } }) => Promise<Response> {
  const handle = createClientTokenHandler(options);
  return (c) => handle(c.req.raw);
}

/**
 * A `clientToken` source for browser code: fetches a token from your endpoint (the handler above) and is
 * asked again by the SDK when the token expires. `new Contour({ clientToken: fetchClientToken('/token') })`.
 */
export function fetchClientToken(endpoint: string, init: RequestInit = {}): () => Promise<string> {
  return async () => {
    const response = await fetch(endpoint, { method: 'POST', ...init });
    if (!response.ok)
      throw new ContourError(`Client token endpoint ${endpoint} answered HTTP ${response.status}`);
    return ((await response.json()) as ClientTokenResponse).token;
  };
}
