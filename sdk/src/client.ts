import type { PreprocessResult } from '@contour/shared/contracts';
import { Billing, ClientTokens, Models } from './billing/billing.ts';
import { ContourError } from './errors/errors.ts';
import { Generations } from './generations/generations.ts';
import { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS } from './http/retry.ts';
import { type RequestOptions, Transport } from './http/transport.ts';
import { type PreprocessParams, preprocess } from './preprocess/preprocess.ts';
import { Webhooks } from './webhooks/webhooks.ts';

/** Where the client talks to when neither `baseUrl`, `CONTOUR_BASE_URL` nor a page origin says otherwise. */
export const DEFAULT_BASE_URL = 'http://127.0.0.1:8787';

/** A client token, or a function fetching a fresh one from your server (called again after a 401). */
export type ClientTokenSource = string | (() => string | Promise<string>);

/** Options of {@link Contour}; everything is optional. */
export interface ContourOptions {
  /** Secret key `sk_...` (server side only). Default: `CONTOUR_API_KEY` from the environment. */
  apiKey?: string;
  /** Client token `ct_...` for browsers, minted by your server (see `@contour/sdk` `createClientTokenHandler`). */
  clientToken?: ClientTokenSource;
  /** API origin. Default: `CONTOUR_BASE_URL`, else the page's origin in a browser, else {@link DEFAULT_BASE_URL}. */
  baseUrl?: string;
  /** The fetch to use (default: the runtime's global `fetch`). */
  fetch?: typeof fetch;
  /** Retries of 429/502/503/504 and network errors (default {@link DEFAULT_MAX_RETRIES}). */
  maxRetries?: number;
  /** Timeout of each HTTP attempt, in milliseconds (default {@link DEFAULT_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Headers added to every request. */
  headers?: Record<string, string>;
  /**
   * Allow a secret key in a browser page. Only for pages the API itself serves (the playground) or local
   * tools: anyone who can open the page can read the key. Browser apps should use `clientToken`.
   */
  dangerouslyAllowBrowser?: boolean;
}

function environment(name: string): string | undefined {
  const process = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return process?.env?.[name] || undefined;
}

function isBrowser(): boolean {
  return typeof (globalThis as { document?: unknown }).document !== 'undefined';
}

function pageOrigin(): string | undefined {
  const location = (globalThis as { location?: { origin?: string; protocol?: string } }).location;
  return isBrowser() && location?.protocol?.startsWith('http') ? location.origin : undefined;
}

/**
 * The Contour API client. Runs wherever `fetch` does (browsers, Node 20+, Workers, Deno, Bun).
 *
 * ```ts
 * const contour = new Contour({ apiKey: process.env.CONTOUR_API_KEY });
 * const generation = await contour.generations.run(
 *   { prompt: 'a house', controls: [{ type: 'canny', image: file }] },
 *   { onProgress: ({ step, total }) => console.log(`${step}/${total}`) },
 * );
 * ```
 */
export class Contour {
  /** Create, follow, cancel and list generations. */
  readonly generations: Generations;
  /** The account's credits. */
  readonly billing: Billing;
  /** Mint client tokens for browsers (server side, secret key). */
  readonly clientTokens: ClientTokens;
  /** What the deployment serves. */
  readonly models: Models;
  /** Verify webhook signatures. */
  readonly webhooks: Webhooks;
  /** The API origin requests go to. */
  readonly baseUrl: string;
  private readonly transport: Transport;

  constructor(options: ContourOptions = {}) {
    const apiKey =
      options.apiKey ?? (options.clientToken === undefined ? environment('CONTOUR_API_KEY') : undefined);
    if (apiKey !== undefined && options.clientToken !== undefined) {
      throw new ContourError('Pass either apiKey or clientToken, not both');
    }
    if (apiKey !== undefined && isBrowser() && !options.dangerouslyAllowBrowser) {
      throw new ContourError(
        'A secret API key must not be used in a browser (anyone can read it). Mint a client token on your ' +
          'server (createClientTokenHandler) and pass { clientToken } instead.',
      );
    }
    this.baseUrl = options.baseUrl ?? environment('CONTOUR_BASE_URL') ?? pageOrigin() ?? DEFAULT_BASE_URL;
    const tokenSource = options.clientToken;
    let token = typeof tokenSource === 'string' ? tokenSource : undefined;
    this.transport = new Transport({
      baseUrl: this.baseUrl,
      // Looked up at call time: Workers refuse a `fetch` detached from its global.
      fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      headers: options.headers ?? {},
      canRefreshCredential: typeof tokenSource === 'function',
      credential: async ({ refresh }) => {
        if (apiKey !== undefined) return apiKey;
        if (typeof tokenSource === 'function' && (token === undefined || refresh))
          token = await tokenSource();
        return token;
      },
    });
    this.generations = new Generations(this.transport);
    this.billing = new Billing(this.transport);
    this.clientTokens = new ClientTokens(this.transport);
    this.models = new Models(this.transport);
    this.webhooks = new Webhooks();
  }

  /**
   * `POST /v1/preprocess`: the control map alone (e.g. to preview it before generating), made by the named
   * `preprocessor` (see `preprocessorsFor(type)`); `mask` for inpaint; openpose* results carry `keypoints`.
   * A network preprocessor whose weights the GPU worker lacks fails with `ApiError` code `model_not_available`.
   */
  preprocess(params: PreprocessParams, options: RequestOptions = {}): Promise<PreprocessResult> {
    return preprocess(this.transport, params, options);
  }
}
