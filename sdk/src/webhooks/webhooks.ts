import type { WebhookPayload } from '@contour/shared/contracts';
import { verifyWebhook, WEBHOOK_TOLERANCE_S } from '@contour/shared/webhooks';

export { WEBHOOK_TOLERANCE_S, WebhookVerificationError } from '@contour/shared/webhooks';

/** Options of `webhooks.verify`. */
export interface VerifyOptions {
  /** Largest accepted distance between `webhook-timestamp` and now, in seconds (default 300). */
  toleranceS?: number;
  /** "Now" in unix milliseconds (for tests and replays). */
  nowMs?: number;
}

/** `contour.webhooks`: checks that a webhook came from Contour (Standard Webhooks signatures). */
export class Webhooks {
  /**
   * Verifies `webhook-id`/`-timestamp`/`-signature` against your `whsec_...` secret and returns the parsed
   * payload. Rejects stale or future timestamps (replays) beyond the tolerance window. Pass the raw body
   * exactly as received. Throws `WebhookVerificationError` (with a `code`) otherwise.
   */
  async verify(
    headers: Headers | Record<string, string | undefined>,
    body: string | Uint8Array,
    secret: string,
    options: VerifyOptions = {},
  ): Promise<WebhookPayload> {
    return verifyWebhook<WebhookPayload>(headers, body, secret, {
      toleranceS: options.toleranceS ?? WEBHOOK_TOLERANCE_S,
      ...(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
    });
  }
}
