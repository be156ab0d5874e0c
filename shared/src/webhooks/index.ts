/**
 * Standard Webhooks (https://www.standardwebhooks.com) signing and verification on WebCrypto, shared by
 * the edge (which signs customer webhooks) and the SDK (whose `webhooks.verify` customers call). Written
 * here rather than taken from the `standardwebhooks` package because that one signs with a synchronous
 * pure-JS SHA-256; WebCrypto's `crypto.subtle.verify` is native in Workers, Node and browsers and
 * compares in constant time.
 *
 * Scheme: `webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`,
 * where the key is the base64 part of the `whsec_...` secret. Several space-separated signatures may be
 * sent (key rotation); any one matching verifies.
 */

/** Header carrying the message id (the same on every retry of one message). */
export const WEBHOOK_ID_HEADER = 'webhook-id';
/** Header carrying the signing time in unix seconds (fresh on every attempt). */
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
/** Header carrying the `v1,<base64>` signatures. */
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';
/** Prefix of webhook signing secrets. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** How far a timestamp may be from now (either way) before verification rejects it, in seconds. */
export const WEBHOOK_TOLERANCE_S = 300;

const encoder = new TextEncoder();

/** Why a webhook failed verification. */
export type WebhookVerificationFailure =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_out_of_tolerance'
  | 'invalid_signature'
  | 'invalid_secret';

/** Thrown by {@link verifyWebhook}; `code` says why. */
export class WebhookVerificationError extends Error {
  constructor(
    readonly code: WebhookVerificationFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/** A new random `whsec_...` secret (24 random bytes, as the spec recommends 24-64). */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(24)));
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const raw = fromBase64(secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(6) : secret);
  if (!raw || raw.length === 0)
    throw new WebhookVerificationError('invalid_secret', 'The webhook secret is not whsec_<base64>');
  return crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

function bodyText(body: string | Uint8Array): string {
  return typeof body === 'string' ? body : new TextDecoder().decode(body);
}

/** The `v1,<base64>` signature of one message. */
export async function signWebhook(
  message: { id: string; timestamp: number; body: string | Uint8Array },
  secret: string,
): Promise<string> {
  const content = `${message.id}.${message.timestamp}.${bodyText(message.body)}`;
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(content));
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

/** The three headers to send with a message signed now (or at `nowMs`). */
export async function webhookHeaders(
  id: string,
  body: string,
  secret: string,
  nowMs: number = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    [WEBHOOK_ID_HEADER]: id,
    [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
    [WEBHOOK_SIGNATURE_HEADER]: await signWebhook({ id, timestamp, body }, secret),
  };
}

function header(headers: Headers | Record<string, string | undefined>, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/**
 * Verifies a received webhook and returns its parsed JSON payload; throws {@link WebhookVerificationError}.
 * Pass the raw body exactly as received (re-serialized JSON will not verify).
 */
export async function verifyWebhook<T = unknown>(
  headers: Headers | Record<string, string | undefined>,
  body: string | Uint8Array,
  secret: string,
  options: { nowMs?: number; toleranceS?: number } = {},
): Promise<T> {
  const id = header(headers, WEBHOOK_ID_HEADER);
  const timestampText = header(headers, WEBHOOK_TIMESTAMP_HEADER);
  const signatures = header(headers, WEBHOOK_SIGNATURE_HEADER);
  if (!id || !timestampText || !signatures)
    throw new WebhookVerificationError(
      'missing_headers',
      'webhook-id, -timestamp and -signature are required',
    );
  if (!/^\d{1,12}$/.test(timestampText))
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp is not unix seconds');
  const timestamp = Number(timestampText);
  const nowS = Math.floor((options.nowMs ?? Date.now()) / 1000);
  if (Math.abs(nowS - timestamp) > (options.toleranceS ?? WEBHOOK_TOLERANCE_S))
    throw new WebhookVerificationError(
      'timestamp_out_of_tolerance',
      'webhook-timestamp is too old or too new',
    );
  const key = await hmacKey(secret);
  const content = encoder.encode(`${id}.${timestamp}.${bodyText(body)}`);
  for (const candidate of signatures.split(' ')) {
    const [version, encoded] = candidate.split(',', 2);
    if (version !== 'v1' || !encoded) continue;
    const mac = fromBase64(encoded);
    // crypto.subtle.verify compares in constant time.
    if (mac && (await crypto.subtle.verify('HMAC', key, mac, content)))
      return JSON.parse(bodyText(body)) as T;
  }
  throw new WebhookVerificationError('invalid_signature', 'No webhook-signature matches');
}
