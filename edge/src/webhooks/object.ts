import { DurableObject } from 'cloudflare:workers';
import type { WebhookDelivery, WebhookEventType } from '@contour/shared/contracts';
import { webhookHeaders } from '@contour/shared/webhooks';
import { iso } from '../accounts/store.ts';
import { type Bindings, isLocal } from '../env.ts';
import { dohUrlOf, publicUrlProblem } from '../lib/public-url.ts';

/**
 * Delay before each attempt, from the Standard Webhooks recommendation: at once, 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 10 h (retries span about 27.6 h, over the promised 24 h).
 */
export const WEBHOOK_RETRY_SCHEDULE_MS = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3600_000,
  5 * 3600_000,
  10 * 3600_000,
  10 * 3600_000,
] as const;
/** How long a receiver has to answer one attempt. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Longest response-body excerpt kept in the delivery log. */
const MAX_ERROR_TEXT = 300;

/** What a delivery sends, fixed when it is scheduled. */
export interface DeliveryMessage {
  id: string;
  account_id: string;
  generation_id: string;
  event_type: WebhookEventType;
  url: string;
  endpoint_id: string | null;
  secret: string;
  body: string;
}

interface DeliveryState extends DeliveryMessage {
  status: WebhookDelivery['status'];
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: number | null;
  created_at: number;
  delivered_at: number | null;
}

/**
 * One webhook message to one URL: attempts it (from the alarm), retries on the schedule above until the
 * receiver answers 2xx or the schedule is exhausted, and logs every attempt to D1. The message id and
 * body never change between attempts; the timestamp and signature are fresh each time.
 */
export class WebhookDeliveryObject extends DurableObject<Bindings> {
  private async load(): Promise<DeliveryState | undefined> {
    return this.ctx.storage.get<DeliveryState>('delivery');
  }

  /** Stores the message and schedules its first attempt now (idempotent per message id). */
  async schedule(message: DeliveryMessage): Promise<void> {
    if (await this.load()) return;
    const now = Date.now();
    const state: DeliveryState = {
      ...message,
      status: 'pending',
      attempts: 0,
      last_status_code: null,
      last_error: null,
      next_attempt_at: now,
      created_at: now,
      delivered_at: null,
    };
    await this.ctx.storage.put('delivery', state);
    await this.log(state);
    await this.ctx.storage.setAlarm(now);
  }

  /** Manual redelivery: the same message (same id) is attempted again now, whatever its status. */
  async redeliver(): Promise<boolean> {
    const state = await this.load();
    if (!state) return false;
    state.status = 'pending';
    state.next_attempt_at = Date.now();
    await this.ctx.storage.put('delivery', state);
    await this.log(state);
    await this.ctx.storage.setAlarm(state.next_attempt_at);
    return true;
  }

  override async alarm(): Promise<void> {
    const state = await this.load();
    if (state?.status !== 'pending') return;
    await this.attempt(state);
  }

  private async attempt(state: DeliveryState): Promise<void> {
    state.attempts += 1;
    const started = Date.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      // Endpoints were checked when saved; the name may resolve elsewhere since (production resolves it again).
      const problem = await publicUrlProblem(new URL(state.url), {
        allowInsecure: isLocal(this.env),
        dohUrl: dohUrlOf(this.env),
      });
      if (problem) throw new Error(problem);
      const response = await fetch(state.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Contour-Webhooks/1',
          ...(await webhookHeaders(state.id, state.body, state.secret)),
        },
        body: state.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      statusCode = response.status;
      if (!response.ok)
        error = (await response.text().catch(() => '')).slice(0, MAX_ERROR_TEXT) || `HTTP ${statusCode}`;
      else await response.body?.cancel();
    } catch (caught) {
      error = caught instanceof Error ? caught.message : String(caught);
    }
    const now = Date.now();
    state.last_status_code = statusCode;
    state.last_error = error;
    if (error === null) {
      state.status = 'succeeded';
      state.delivered_at = now;
      state.next_attempt_at = null;
    } else if (state.attempts >= WEBHOOK_RETRY_SCHEDULE_MS.length) {
      state.status = 'failed';
      state.next_attempt_at = null;
    } else {
      state.next_attempt_at = now + WEBHOOK_RETRY_SCHEDULE_MS[state.attempts]!;
    }
    await this.ctx.storage.put('delivery', state);
    if (state.next_attempt_at !== null) await this.ctx.storage.setAlarm(state.next_attempt_at);
    await this.env.DB.prepare(
      'INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    )
      .bind(state.id, state.attempts, statusCode, error, now - started, now)
      .run();
    await this.log(state);
  }

  /** Upserts the delivery's row in D1 (what `GET /v1/webhooks/deliveries` lists). */
  private async log(state: DeliveryState): Promise<void> {
    await this.env.DB.prepare(
      `INSERT INTO webhook_deliveries (id, account_id, generation_id, event_type, url, endpoint_id, status, attempts,
         last_status_code, last_error, next_attempt_at, created_at, delivered_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
         last_status_code = excluded.last_status_code, last_error = excluded.last_error,
         next_attempt_at = excluded.next_attempt_at, delivered_at = excluded.delivered_at`,
    )
      .bind(
        state.id,
        state.account_id,
        state.generation_id,
        state.event_type,
        state.url,
        state.endpoint_id,
        state.status,
        state.attempts,
        state.last_status_code,
        state.last_error,
        state.next_attempt_at,
        state.created_at,
        state.delivered_at,
      )
      .run();
  }
}

/** A row of `webhook_deliveries`: a delivery's state without the account, secret and body. */
export type DeliveryRow = Omit<DeliveryState, 'account_id' | 'secret' | 'body'>;

/** The public view of a delivery row. */
export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    object: 'webhook_delivery',
    generation_id: row.generation_id,
    event_type: row.event_type,
    url: row.url,
    endpoint_id: row.endpoint_id,
    status: row.status,
    attempts: row.attempts,
    last_status_code: row.last_status_code,
    last_error: row.last_error,
    next_attempt_at: row.next_attempt_at === null ? null : iso(row.next_attempt_at),
    created_at: iso(row.created_at),
    delivered_at: row.delivered_at === null ? null : iso(row.delivered_at),
  };
}

/** The Durable Object of one delivery. */
export function deliveryStub(env: Pick<Bindings, 'WEBHOOK_DELIVERIES'>, deliveryId: string) {
  return env.WEBHOOK_DELIVERIES.get(env.WEBHOOK_DELIVERIES.idFromName(deliveryId));
}
