import type { Bindings } from '../env.ts';

/** The origin public URLs are built on: `PUBLIC_BASE_URL`, else the request's own origin. */
export function baseUrl(env: Pick<Bindings, 'PUBLIC_BASE_URL'>, requestUrl: string): string {
  return (env.PUBLIC_BASE_URL || new URL(requestUrl).origin).replace(/\/+$/, '');
}
