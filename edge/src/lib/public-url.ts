import { deniedByDns, deniedHostReason } from '@contour/shared/http';
import type { Bindings } from '../env.ts';

/** The DNS-over-HTTPS JSON endpoint production resolves customer hosts through (see docs/EDGE.md). */
export const DEFAULT_DOH_URL = 'https://cloudflare-dns.com/dns-query';

/** Options of {@link publicUrlProblem}. */
export interface PublicUrlOptions {
  /** Local development: http:// and private hosts are allowed (the local stack runs on loopback). */
  allowInsecure: boolean;
  /** DNS-over-HTTPS endpoint to resolve names through; empty = names are judged by their spelling only. */
  dohUrl?: string;
  fetcher?: typeof fetch;
}

/**
 * Why a customer-supplied URL (image source, webhook target) must not be fetched by the edge, or null:
 * scheme, credentials, the host's spelling (see `deniedHostReason`) and, when a DoH endpoint is set, what
 * the name resolves to now. Workers cannot resolve a name before `fetch` connects, so a name that answers
 * differently a moment later (DNS rebinding) is out of reach of this check; Cloudflare's own egress does
 * not route to private addresses, which covers that gap on the edge.
 */
export async function publicUrlProblem(url: URL, options: PublicUrlOptions): Promise<string | null> {
  if (url.protocol !== 'https:' && !(options.allowInsecure && url.protocol === 'http:')) {
    return 'URLs must use https';
  }
  if (url.username || url.password) return 'URLs must not carry credentials';
  if (options.allowInsecure) return null;
  if (url.port && url.port !== '443') return 'only the default https port is accepted';
  const reason = deniedHostReason(url.hostname);
  if (reason) return `host ${url.hostname.slice(0, 100)} is not reachable from Contour (${reason})`;
  if (!options.dohUrl) return null;
  try {
    const dns = await deniedByDns(url.hostname, options.dohUrl, options.fetcher);
    return dns ? `host is not reachable from Contour (${dns})` : null;
  } catch {
    return 'host could not be resolved';
  }
}

/** The DoH endpoint for an environment: production resolves, local development does not. */
export function dohUrlOf(env: Pick<Bindings, 'ENVIRONMENT' | 'SSRF_DOH_URL'>): string {
  if (env.ENVIRONMENT !== 'production') return '';
  return env.SSRF_DOH_URL === undefined ? DEFAULT_DOH_URL : env.SSRF_DOH_URL;
}
