/**
 * HMAC-SHA256 request signing between the edge and the GPU workers, on WebCrypto so the same code
 * runs in Workers and Node. The signature covers method, path, timestamp, a random nonce and the body's
 * SHA-256, so a captured request cannot be replayed outside the window or re-pointed at another endpoint,
 * and two identical requests in the same second still carry different signatures (receivers refuse a
 * signature they have already seen).
 */

/** Header carrying the signing time (unix seconds). */
export const TIMESTAMP_HEADER = 'x-contour-timestamp';
/** Header carrying a random per-request nonce (hex). */
export const NONCE_HEADER = 'x-contour-nonce';
/** Header carrying `v1=<hex hmac>`. */
export const SIGNATURE_HEADER = 'x-contour-signature';
/** How old a signed request may be, in seconds. */
export const DEFAULT_REPLAY_WINDOW_S = 300;
/** How far in the future a timestamp may be (clock skew between hosts), in seconds. */
export const DEFAULT_CLOCK_SKEW_S = 30;

const encoder = new TextEncoder();

/** What a signature covers. */
export interface SignedRequestParts {
  method: string;
  /** Path and query, e.g. `/v1/jobs?x=1`. */
  path: string;
  body: Uint8Array | string;
}

/** Why verification failed. */
export type SignatureFailure = 'missing' | 'malformed' | 'expired' | 'future' | 'mismatch';

/** Result of {@link verifyRequest}. */
export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: SignatureFailure };

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function asBytes(body: Uint8Array | string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(typeof body === 'string' ? encoder.encode(body) : body);
}

/** Lowercase hex SHA-256 of the body. */
export async function sha256Hex(body: Uint8Array | string): Promise<string> {
  return toHex(await crypto.subtle.digest('SHA-256', asBytes(body)));
}

/** The exact string that is MACed: `METHOD\npath\ntimestamp\nnonce\nsha256(body)`. */
export async function canonicalString(
  parts: SignedRequestParts,
  timestamp: number,
  nonce: string,
): Promise<string> {
  return `${parts.method.toUpperCase()}\n${parts.path}\n${timestamp}\n${nonce}\n${await sha256Hex(parts.body)}`;
}

function randomNonce(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(
    '',
  );
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', asBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
    'verify',
  ]);
}

/** Signs a request: returns the three headers to send with it. */
export async function signRequest(
  parts: SignedRequestParts,
  secret: string,
  now: number = Date.now(),
  nonce: string = randomNonce(),
): Promise<Record<typeof TIMESTAMP_HEADER | typeof NONCE_HEADER | typeof SIGNATURE_HEADER, string>> {
  const timestamp = Math.floor(now / 1000);
  const message = asBytes(await canonicalString(parts, timestamp, nonce));
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), message);
  return {
    [TIMESTAMP_HEADER]: String(timestamp),
    [NONCE_HEADER]: nonce,
    [SIGNATURE_HEADER]: `v1=${toHex(mac)}`,
  };
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Verifies the headers of a signed request. `crypto.subtle.verify` compares in constant time.
 * Several secrets may be given so keys can be rotated without downtime.
 */
export async function verifyRequest(
  parts: SignedRequestParts,
  headers: { get(name: string): string | null },
  secrets: string | readonly string[],
  options: { now?: number; replayWindowS?: number; clockSkewS?: number } = {},
): Promise<VerifyResult> {
  const timestampHeader = headers.get(TIMESTAMP_HEADER);
  const nonce = headers.get(NONCE_HEADER);
  const signatureHeader = headers.get(SIGNATURE_HEADER);
  if (!timestampHeader || !signatureHeader || !nonce) return { ok: false, reason: 'missing' };
  if (!/^\d{1,12}$/.test(timestampHeader) || !/^[0-9a-f]{16,64}$/.test(nonce))
    return { ok: false, reason: 'malformed' };
  const timestamp = Number(timestampHeader);
  const nowS = Math.floor((options.now ?? Date.now()) / 1000);
  if (nowS - timestamp > (options.replayWindowS ?? DEFAULT_REPLAY_WINDOW_S))
    return { ok: false, reason: 'expired' };
  if (timestamp - nowS > (options.clockSkewS ?? DEFAULT_CLOCK_SKEW_S)) return { ok: false, reason: 'future' };
  const signatures = signatureHeader
    .split(/[ ,]+/)
    .filter((s) => s.startsWith('v1='))
    .map((s) => fromHex(s.slice(3)));
  if (signatures.length === 0 || signatures.some((s) => s === null))
    return { ok: false, reason: 'malformed' };
  const message = asBytes(await canonicalString(parts, timestamp, nonce));
  for (const secret of typeof secrets === 'string' ? [secrets] : secrets) {
    const key = await hmacKey(secret);
    for (const signature of signatures) {
      if (await crypto.subtle.verify('HMAC', key, signature!, message)) return { ok: true, timestamp };
    }
  }
  return { ok: false, reason: 'mismatch' };
}
