import { SIGNATURE_HEADER, type SignatureFailure, verifyRequest } from '@contour/shared/signing';
import { LRUCache } from 'lru-cache';

/** Why a request was refused: a signature failure, or a signature already used within the window. */
export type AuthFailure = SignatureFailure | 'replayed';

/** Options of {@link RequestVerifier}. */
export interface RequestVerifierOptions {
  secrets: readonly string[];
  replayWindowS: number;
  clockSkewS: number;
  /** Most signatures remembered at once (oldest forgotten first). */
  maxRemembered?: number;
}

/**
 * Verifies signed requests (shared HMAC scheme: method, path, timestamp, nonce, body hash) and refuses a signature
 * seen before: each one is remembered until it could no longer pass the timestamp check anyway.
 */
export class RequestVerifier {
  private readonly seen: LRUCache<string, true>;

  constructor(private readonly options: RequestVerifierOptions) {
    this.seen = new LRUCache<string, true>({
      max: options.maxRemembered ?? 100_000,
      // A timestamp up to clockSkew in the future stays valid for window + skew seconds.
      ttl: (options.replayWindowS + options.clockSkewS + 1) * 1000,
      ttlAutopurge: false,
    });
  }

  /** `undefined` when the request is authentic and fresh, else why not. */
  async verify(
    method: string,
    path: string,
    body: Uint8Array,
    headers: { get(name: string): string | null },
  ): Promise<AuthFailure | undefined> {
    const result = await verifyRequest({ method, path, body }, headers, this.options.secrets, {
      replayWindowS: this.options.replayWindowS,
      clockSkewS: this.options.clockSkewS,
    });
    if (!result.ok) return result.reason;
    const signature = headers.get(SIGNATURE_HEADER)!;
    if (this.seen.has(signature)) return 'replayed';
    this.seen.set(signature, true);
    return undefined;
  }
}

/** Human text for each refusal reason. */
export const AUTH_FAILURE_MESSAGES: Record<AuthFailure, string> = {
  missing: 'missing x-contour-timestamp, x-contour-nonce or x-contour-signature header',
  malformed: 'malformed signature headers',
  expired: 'request timestamp is outside the replay window',
  future: 'request timestamp is too far in the future',
  mismatch: 'signature does not match',
  replayed: 'this signed request was already received (replay)',
};
