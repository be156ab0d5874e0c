import { DurableObject } from 'cloudflare:workers';
import {
  type ApiErrorBody,
  type Generation,
  type GenerationEvent,
  TERMINAL_STATUSES,
  type WorkerJob,
} from '@contour/shared/contracts';
import type { ClientTokenLimits, ReserveResult } from '../accounts/object.ts';
import { accountStub } from '../accounts/object.ts';
import { reserveCredits, settleCredits } from '../billing/settle.ts';
import { backlogStub, poolKey } from '../dispatch/backlog.ts';
import { enqueueJob } from '../dispatch/enqueue.ts';
import type { Bindings } from '../env.ts';
import { imageUrlSigner, LONG_IMAGE_URL_TTL_S } from '../images/signed-url.ts';
import { scheduleTerminalWebhooks } from '../webhooks/schedule.ts';
import {
  type GenerationState,
  type PullClaim,
  type StoredControlMap,
  type StoredOutput,
  toGeneration,
} from './state.ts';

/** A queued generation that no worker picked up within this time fails (credits released). */
export const QUEUED_TIMEOUT_MS = 15 * 60_000;
/** A running generation that has not reported progress for this long is considered stuck. */
export const STALLED_TIMEOUT_MS = 2 * 60_000;
/** A Replicate prediction with no webhook for this long is considered stuck. */
export const REPLICATE_STALLED_TIMEOUT_MS = 15 * 60_000;
/** Times the alarm re-enqueues a stuck job before failing it. */
export const MAX_STUCK_RETRIES = 2;
/** When a reservation's outcome is unknown (the call died), the alarm releases it after this long. */
export const RESERVE_RECOVERY_MS = 60_000;
/** Retry delay when settling credits or scheduling webhooks after a terminal transition failed. */
export const SETTLE_RETRY_MS = 15_000;
/** Bounds on the heartbeat period a pull-mode worker may declare. */
export const PULL_HEARTBEAT_RANGE_MS = { min: 200, max: 60_000 } as const;
/** A pull-mode holder silent for this many heartbeat periods is presumed dead and its job can be claimed again. */
export const PULL_MISSED_HEARTBEATS = 3;

/** What a pull-mode worker is told when it asks to run a delivered job. */
export type ClaimResult =
  | { action: 'run'; claim_id: string; takeover: boolean }
  | { action: 'defer'; retry_after_s: number; reason: string }
  | { action: 'drop'; reason: string };

/** What the current claim holder's report or result may do. */
export type ClaimCheck = 'current' | 'superseded' | 'terminal' | 'missing';

type EventBody =
  | { type: 'generation.queued' }
  | { type: 'generation.started' }
  | { type: 'generation.progress'; step: number; total: number }
  | { type: 'generation.succeeded' | 'generation.canceled' }
  | { type: 'generation.failed'; error: ApiErrorBody };

const encoder = new TextEncoder();

/** Header the events route sets on the request it forwards: the caller's account (ownership check). */
export const ACCOUNT_HEADER = 'x-contour-account';

/** Formats one SSE message: `id`, `event` and the JSON event as `data`. */
function sseMessage(event: GenerationEvent): Uint8Array {
  return encoder.encode(`id: ${event.sequence}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
}

/**
 * One generation's source of truth: its state machine (queued -> running -> succeeded | failed |
 * canceled), progress, results and event log, the SSE fan-out to clients, and an alarm that retries or
 * fails stuck jobs. A Durable Object is single-threaded, so transitions never race.
 */
export class GenerationObject extends DurableObject<Bindings> {
  private readonly streams = new Set<WritableStreamDefaultWriter<Uint8Array>>();
  private readonly terminalWaiters = new Set<() => void>();

  private async load(): Promise<GenerationState | undefined> {
    return this.ctx.storage.get<GenerationState>('state');
  }

  private async save(state: GenerationState): Promise<void> {
    await this.ctx.storage.put('state', state);
  }

  /** The public resource with freshly signed image URLs (events are replayed later: they get long-lived ones). */
  private view(state: GenerationState, ttlS?: number): Promise<Generation> {
    return toGeneration(state, imageUrlSigner(this.env, state.base_url, ttlS));
  }

  private isTerminal(state: GenerationState): boolean {
    return TERMINAL_STATUSES.includes(state.status);
  }

  /**
   * Reports where this generation stands to the pool's backlog (the KEDA metrics). Best effort: a lost update
   * only skews the metrics until the next transition or the backlog's expiry.
   */
  private async track(state: GenerationState, waiting = state.status === 'queued'): Promise<void> {
    try {
      const entry = this.isTerminal(state)
        ? null
        : {
            pool: poolKey(state.job),
            status: waiting ? ('queued' as const) : ('running' as const),
            queued_at_ms: Date.parse(state.created_at),
            updated_ms: Date.now(),
          };
      await backlogStub(this.env).record(state.id, entry);
    } catch (error) {
      console.warn(`backlog update for ${state.id} failed`, error);
    }
  }

  /** Appends an event to the log and pushes it to every connected SSE client. */
  private async emit(state: GenerationState, body: EventBody): Promise<void> {
    const sequence = ((await this.ctx.storage.get<number>('sequence')) ?? 0) + 1;
    const base = { generation_id: state.id, sequence, created_at: new Date().toISOString() };
    const event = (
      body.type === 'generation.succeeded' ||
      body.type === 'generation.canceled' ||
      body.type === 'generation.failed'
        ? { ...base, ...body, generation: await this.view(state, LONG_IMAGE_URL_TTL_S) }
        : { ...base, ...body }
    ) as GenerationEvent;
    await this.ctx.storage.put({ sequence, [`event:${String(sequence).padStart(8, '0')}`]: event });
    const message = sseMessage(event);
    const terminal = this.isTerminal(state);
    for (const writer of this.streams) {
      writer.write(message).catch(() => this.streams.delete(writer));
      if (terminal) {
        writer.close().catch(() => {});
        this.streams.delete(writer);
      }
    }
    if (terminal) {
      for (const wake of this.terminalWaiters) wake();
      this.terminalWaiters.clear();
    }
  }

  /** Creates the generation (idempotent: a second call returns the existing resource). */
  async initialize(state: GenerationState): Promise<Generation> {
    const existing = await this.load();
    if (existing) return this.view(existing);
    await this.save(state);
    await this.emit(state, { type: 'generation.queued' });
    await this.ctx.storage.setAlarm(Date.now() + QUEUED_TIMEOUT_MS);
    await this.track(state);
    return this.view(state);
  }

  /**
   * Reserves the generation's credits on its account, then creates it. Refused reservations create
   * nothing. If this call dies between the two, the alarm releases the hold (see {@link alarm}).
   */
  async open(
    state: GenerationState,
    clientToken: ClientTokenLimits | null,
  ): Promise<
    { ok: true; generation: Generation } | { ok: false; refusal: Exclude<ReserveResult, { ok: true }> }
  > {
    const existing = await this.load();
    if (existing) return { ok: true, generation: await this.view(existing) };
    if (state.billing) {
      await this.ctx.storage.put('pending_reserve', {
        account_id: state.billing.account_id,
        generation_id: state.id,
      });
      await this.ctx.storage.setAlarm(Date.now() + RESERVE_RECOVERY_MS);
      const result = await reserveCredits(this.env, state, clientToken);
      if (!result.ok) {
        await this.ctx.storage.delete('pending_reserve');
        await this.ctx.storage.deleteAlarm();
        return { ok: false, refusal: result };
      }
    }
    const generation = await this.initialize(state);
    await this.ctx.storage.delete('pending_reserve');
    return { ok: true, generation };
  }

  /** True when `accountId` may see this generation (unbilled ones are visible to any caller). */
  private visibleTo(state: GenerationState, accountId: string | null | undefined): boolean {
    return !accountId || !state.billing || state.billing.account_id === accountId;
  }

  /** The public resource, or null when this id was never created (or belongs to another account). */
  async get(accountId?: string | null): Promise<Generation | null> {
    const state = await this.load();
    return state && this.visibleTo(state, accountId) ? this.view(state) : null;
  }

  /**
   * After a terminal transition: settle the credits (capture on success, release otherwise) and schedule
   * the customer webhook. Both are idempotent; what fails is retried from the alarm.
   */
  private async afterTerminal(state: GenerationState): Promise<void> {
    let retry = false;
    if (state.billing && !state.settled) {
      try {
        const charged = await settleCredits(this.env, state);
        if (state.status === 'succeeded') state.credits = charged;
        state.settled = true;
      } catch (error) {
        console.error(`settling ${state.id} failed; retrying`, error);
        retry = true;
      }
    }
    if (state.billing && !state.webhooks_scheduled) {
      try {
        await scheduleTerminalWebhooks(this.env, state);
        state.webhooks_scheduled = true;
      } catch (error) {
        console.error(`scheduling webhooks of ${state.id} failed; retrying`, error);
        retry = true;
      }
    }
    await this.save(state);
    if (retry) await this.ctx.storage.setAlarm(Date.now() + SETTLE_RETRY_MS);
    await this.track(state);
  }

  /** The stored state (for the queue consumer and billing). */
  async getState(): Promise<GenerationState | null> {
    return (await this.load()) ?? null;
  }

  /**
   * A worker accepted the job. Returns false when the generation must not run (canceled or already
   * finished), so the consumer drops the message instead of doing unpaid work.
   */
  async markStarted(): Promise<boolean> {
    const state = await this.load();
    if (!state || this.isTerminal(state)) return false;
    state.attempts += 1;
    state.last_activity_ms = Date.now();
    if (state.status === 'queued') {
      state.status = 'running';
      state.started_at ??= new Date().toISOString();
      await this.save(state);
      await this.emit(state, { type: 'generation.started' });
    } else {
      await this.save(state);
    }
    await this.ctx.storage.setAlarm(Date.now() + STALLED_TIMEOUT_MS);
    await this.track(state);
    return true;
  }

  /** False when this request nonce was seen before (a replayed signed callback). */
  async freshNonce(nonce: string): Promise<boolean> {
    const key = `nonce:${nonce}`;
    if (await this.ctx.storage.get(key)) return false;
    await this.ctx.storage.put(key, Date.now());
    return true;
  }

  /**
   * Pull mode: a worker received a delivery of this generation's job and asks to run it. However often the
   * queue delivers the message, one holder at a time runs it: finished generations are dropped (the worker
   * acks), a live holder (heard from within {@link PULL_MISSED_HEARTBEATS} periods) makes the others defer
   * (the worker retries the message later), and a silent holder is taken over (the job restarts).
   */
  async claimPull(request: {
    job_id: string;
    worker_id: string;
    heartbeat_ms: number;
  }): Promise<ClaimResult> {
    const state = await this.load();
    if (!state) return { action: 'drop', reason: 'no such generation' };
    if (this.isTerminal(state)) return { action: 'drop', reason: `the generation is ${state.status}` };
    const now = Date.now();
    const current = state.pull_claim;
    if (current) {
      const silentFor = now - current.last_seen_ms;
      const deadAfter = PULL_MISSED_HEARTBEATS * current.heartbeat_ms;
      if (silentFor < deadAfter) {
        return {
          action: 'defer',
          retry_after_s: Math.max(1, Math.ceil((deadAfter - silentFor) / 1000)),
          reason: `worker ${current.worker_id} is running it`,
        };
      }
    }
    const heartbeat = Math.min(
      PULL_HEARTBEAT_RANGE_MS.max,
      Math.max(PULL_HEARTBEAT_RANGE_MS.min, Math.round(request.heartbeat_ms)),
    );
    const claim: PullClaim = {
      claim_id: crypto.randomUUID(),
      worker_id: request.worker_id,
      job_id: request.job_id,
      claimed_ms: now,
      last_seen_ms: now,
      heartbeat_ms: heartbeat,
    };
    state.pull_claim = claim;
    await this.save(state);
    await this.markStarted();
    return { action: 'run', claim_id: claim.claim_id, takeover: Boolean(current) };
  }

  /** Whether `claimId` is the live claim (only its holder's reports and result count). */
  async checkClaim(claimId: string): Promise<ClaimCheck> {
    const state = await this.load();
    if (!state) return 'missing';
    if (this.isTerminal(state)) return 'terminal';
    return state.pull_claim?.claim_id === claimId ? 'current' : 'superseded';
  }

  /**
   * A pull-mode holder's sign of life: a heartbeat, or a step. `{ stop: true }` when it must stop (canceled,
   * finished, or its claim was taken over).
   */
  async pullReport(claimId: string, step?: { step: number; total: number }): Promise<{ stop: boolean }> {
    const state = await this.load();
    if (!state || this.isTerminal(state) || state.pull_claim?.claim_id !== claimId) return { stop: true };
    state.pull_claim.last_seen_ms = Date.now();
    state.last_activity_ms = Date.now();
    await this.save(state);
    if (step) return this.reportProgress(step.step, step.total);
    await this.ctx.storage.setAlarm(Date.now() + STALLED_TIMEOUT_MS);
    return { stop: false };
  }

  /** The holder gives the job back (retryable failure, shutdown): the next delivery may claim it at once. */
  async releaseClaim(claimId: string): Promise<void> {
    const state = await this.load();
    if (!state || this.isTerminal(state) || state.pull_claim?.claim_id !== claimId) return;
    state.pull_claim = null;
    await this.save(state);
    await this.track(state, true);
  }

  /** Records a denoising step. Returns `{ stop: true }` when the generation was canceled meanwhile. */
  async reportProgress(step: number, total: number): Promise<{ stop: boolean }> {
    const state = await this.load();
    if (!state || this.isTerminal(state)) return { stop: true };
    state.last_activity_ms = Date.now();
    // Retries restart from step 0; clients should never see progress go backwards.
    if (step > state.step || total !== state.total) {
      state.step = Math.min(step, total);
      state.total = total;
      await this.save(state);
      await this.emit(state, { type: 'generation.progress', step: state.step, total });
    }
    await this.ctx.storage.setAlarm(Date.now() + STALLED_TIMEOUT_MS);
    return { stop: false };
  }

  /** Stores the results; a canceled generation stays canceled (its outputs are discarded). */
  async succeed(result: {
    outputs: StoredOutput[];
    control_maps: StoredControlMap[];
    steps: number;
  }): Promise<Generation> {
    const state = await this.load();
    if (!state) throw new Error('generation does not exist');
    if (this.isTerminal(state)) return this.view(state);
    state.status = 'succeeded';
    state.outputs = result.outputs;
    state.control_maps = result.control_maps.length > 0 ? result.control_maps : state.control_maps;
    state.steps = result.steps;
    state.step = state.total;
    state.finished_at = new Date().toISOString();
    state.captured = true;
    await this.save(state);
    await this.ctx.storage.deleteAlarm();
    await this.afterTerminal(state);
    await this.emit(state, { type: 'generation.succeeded' });
    return this.view(state);
  }

  /** Fails the generation (no charge). Ignored when it already finished. */
  async fail(error: ApiErrorBody): Promise<Generation | null> {
    const state = await this.load();
    if (!state) return null;
    if (this.isTerminal(state)) return this.view(state);
    state.status = 'failed';
    state.error = error;
    state.finished_at = new Date().toISOString();
    await this.save(state);
    await this.ctx.storage.deleteAlarm();
    await this.afterTerminal(state);
    await this.emit(state, { type: 'generation.failed', error });
    return this.view(state);
  }

  /** Cancels a queued or running generation (credits released); finished ones are returned unchanged. */
  async cancel(accountId?: string | null): Promise<Generation | null> {
    const state = await this.load();
    if (!state || !this.visibleTo(state, accountId)) return null;
    if (this.isTerminal(state)) return this.view(state);
    state.status = 'canceled';
    state.finished_at = new Date().toISOString();
    await this.save(state);
    await this.ctx.storage.deleteAlarm();
    await this.afterTerminal(state);
    await this.emit(state, { type: 'generation.canceled' });
    return this.view(state);
  }

  /** Resolves with the resource once it is terminal or `timeoutMs` has passed (for `Prefer: wait`). */
  async waitForTerminal(timeoutMs: number): Promise<Generation | null> {
    const state = await this.load();
    if (!state) return null;
    if (!this.isTerminal(state)) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        const waiters = this.terminalWaiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
    return this.get();
  }

  /** Stuck-job watchdog: re-enqueue a stalled job a few times, then fail it with a retryable timeout. */
  override async alarm(): Promise<void> {
    const state = await this.load();
    const pendingReserve = await this.ctx.storage.get<{ account_id: string; generation_id: string }>(
      'pending_reserve',
    );
    if (!state) {
      // open() died after asking for a reservation: release it (a release without a hold blocks a late one).
      if (pendingReserve) {
        const { account_id, generation_id } = pendingReserve;
        await accountStub(this.env, account_id).release(account_id, generation_id, 'abandoned');
        await this.ctx.storage.delete('pending_reserve');
      }
      return;
    }
    if (this.isTerminal(state)) {
      if (state.billing && (!state.settled || !state.webhooks_scheduled)) await this.afterTerminal(state);
      return;
    }
    const now = Date.now();
    if (state.status === 'queued') {
      if (now - Date.parse(state.created_at) >= QUEUED_TIMEOUT_MS) {
        await this.fail({
          code: 'timeout',
          message: 'No GPU worker picked up the job in time',
          details: [],
          retryable: true,
        });
      } else {
        await this.ctx.storage.setAlarm(Date.parse(state.created_at) + QUEUED_TIMEOUT_MS);
      }
      return;
    }
    // Replicate reports no steps, only start/completed webhooks: give it longer before calling it stuck.
    const stalledAfter = state.replicate ? REPLICATE_STALLED_TIMEOUT_MS : STALLED_TIMEOUT_MS;
    if (now - state.last_activity_ms < stalledAfter) {
      await this.ctx.storage.setAlarm(state.last_activity_ms + stalledAfter);
      return;
    }
    const retries = (await this.ctx.storage.get<number>('stuck_retries')) ?? 0;
    if (retries < MAX_STUCK_RETRIES) {
      await this.ctx.storage.put('stuck_retries', retries + 1);
      const job: WorkerJob = {
        ...state.job,
        attempt: state.attempts + 1,
        job_id: `${state.id}_r${retries + 1}`,
      };
      state.job = job;
      state.last_activity_ms = now;
      // A silent pull-mode holder loses its claim, so the new delivery can run at once.
      state.pull_claim = null;
      await this.save(state);
      await enqueueJob(this.env, job);
      await this.ctx.storage.setAlarm(now + QUEUED_TIMEOUT_MS);
      return;
    }
    await this.fail({
      code: 'timeout',
      message: 'The GPU worker stopped responding',
      details: [],
      retryable: true,
    });
  }

  /** Records the Replicate prediction running this generation (the webhook finishes it). */
  async attachPrediction(replicate: NonNullable<GenerationState['replicate']>): Promise<void> {
    const state = await this.load();
    if (!state || this.isTerminal(state)) return;
    state.replicate = replicate;
    state.last_activity_ms = Date.now();
    await this.save(state);
    await this.ctx.storage.setAlarm(Date.now() + REPLICATE_STALLED_TIMEOUT_MS);
  }

  /** Remembers a webhook id; false when it was seen before (Replicate retries deliveries). */
  async recordWebhook(webhookId: string): Promise<boolean> {
    const key = `webhook:${webhookId}`;
    if (await this.ctx.storage.get(key)) return false;
    await this.ctx.storage.put(key, Date.now());
    return true;
  }

  /** A sign of life from a backend without step progress (Replicate's `start` webhook). */
  async touch(): Promise<void> {
    const state = await this.load();
    if (!state || this.isTerminal(state)) return;
    state.last_activity_ms = Date.now();
    await this.save(state);
  }

  /** `GET .../events`: replays the log after `Last-Event-ID`, then streams live events until terminal. */
  override async fetch(request: Request): Promise<Response> {
    const state = await this.load();
    if (!state || !this.visibleTo(state, request.headers.get(ACCOUNT_HEADER)))
      return new Response('not found', { status: 404 });
    const lastId = Number(
      request.headers.get('last-event-id') ?? new URL(request.url).searchParams.get('after') ?? 0,
    );
    const past = await this.ctx.storage.list<GenerationEvent>({ prefix: 'event:' });
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    writer.write(encoder.encode(': contour event stream\nretry: 2000\n\n')).catch(() => {});
    for (const event of past.values()) {
      if (event.sequence > lastId) writer.write(sseMessage(event)).catch(() => {});
    }
    if (this.isTerminal(state)) writer.close().catch(() => {});
    else this.streams.add(writer);
    return new Response(readable, {
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
      },
    });
  }
}
