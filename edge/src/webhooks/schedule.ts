import type { WebhookEventType, WebhookPayload } from '@contour/shared/contracts';
import { sha256Hex } from '@contour/shared/signing';
import type { Bindings } from '../env.ts';
import { type GenerationState, toGeneration } from '../generations/state.ts';
import { imageUrlSigner, LONG_IMAGE_URL_TTL_S } from '../images/signed-url.ts';
import { deliveryStub } from './object.ts';

/**
 * Schedules the terminal event of a billed generation: to the request's `webhook` (signed with the
 * account's secret) or, without one, to each of the account's endpoints (each with its own secret).
 * Message ids derive from the generation and the target, so scheduling twice sends nothing twice.
 */
export async function scheduleTerminalWebhooks(env: Bindings, state: GenerationState): Promise<void> {
  const accountId = state.billing?.account_id;
  if (!accountId) return;
  const type = `generation.${state.status}` as WebhookEventType;
  const payload: WebhookPayload = {
    type,
    timestamp: state.finished_at ?? new Date().toISOString(),
    // Deliveries are retried for hours: their image URLs live a day (GET the generation for fresh ones).
    data: (await toGeneration(
      state,
      imageUrlSigner(env, state.base_url, LONG_IMAGE_URL_TTL_S),
    )) as unknown as Record<string, unknown>,
  };
  const body = JSON.stringify(payload);
  let targets: { url: string; secret: string; endpoint_id: string | null }[];
  if (state.webhook) {
    const account = await env.DB.prepare('SELECT webhook_secret FROM accounts WHERE id = ?')
      .bind(accountId)
      .first<{ webhook_secret: string }>();
    if (!account) return;
    targets = [{ url: state.webhook, secret: account.webhook_secret, endpoint_id: null }];
  } else {
    const { results } = await env.DB.prepare(
      'SELECT id, url, secret FROM webhook_endpoints WHERE account_id = ? AND disabled_at IS NULL',
    )
      .bind(accountId)
      .all<{ id: string; url: string; secret: string }>();
    targets = results.map((r) => ({ url: r.url, secret: r.secret, endpoint_id: r.id }));
  }
  await Promise.all(
    targets.map(async (target) => {
      const id = `msg_${(await sha256Hex(`${state.id}\n${type}\n${target.endpoint_id ?? target.url}`)).slice(0, 32)}`;
      await deliveryStub(env, id).schedule({
        id,
        account_id: accountId,
        generation_id: state.id,
        event_type: type,
        url: target.url,
        endpoint_id: target.endpoint_id,
        secret: target.secret,
        body,
      });
    }),
  );
}
