import { type WorkerJob, WorkerJobSchema } from '@contour/shared/contracts';
import { JobError } from '../service/errors.ts';
import type { JobScheduler } from '../service/scheduler.ts';
import type { EdgeClient } from './edge-client.ts';
import { decodeMessageBody, type PulledMessage, type QueuesPullClient } from './queues-api.ts';

/** Settings of {@link PullConsumer}. */
export interface PullConsumerOptions {
  queue: QueuesPullClient;
  edge: EdgeClient;
  scheduler: Pick<JobScheduler, 'submit' | 'cancel'>;
  /** Name in claim records and logs (the pod name). */
  workerId: string;
  /** Most jobs held at once (running + waiting in the scheduler); also the largest pull. */
  maxInFlight: number;
  /**
   * Lease per pull. The pull API has no way to extend a lease, so it must cover a whole job (the edge's job
   * deadline is 10 min); if it lapses anyway the message is redelivered and the edge's claim guard defers it.
   */
  visibilityTimeoutMs: number;
  /** How often a held job reports to the edge when no step does (liveness for the claim guard). */
  heartbeatMs: number;
  /** Wait after an empty pull (the API short-polls) or when full. */
  idleMs: number;
  log?: (message: string) => void;
  /** Counts what happens to deliveries (the worker's `contour_worker_pull_deliveries_total`). */
  count?: (outcome: 'run' | 'deferred' | 'dropped' | DeliveryOutcome) => void;
}

/** What happened to one delivery (for tests and logs). */
export type DeliveryOutcome = 'acked' | 'retried' | 'left';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Pull mode: leases jobs from the Cloudflare queue, claims each with the edge (which guarantees one holder
 * per generation however often a message is delivered), runs it on the local scheduler, reports progress and
 * heartbeats, posts the result, and acks only once the edge has recorded the outcome. Failures the edge may
 * retry are marked for retry so another delivery (here or on another worker) picks them up.
 */
export class PullConsumer {
  private readonly held = new Set<Promise<DeliveryOutcome>>();
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly log: (message: string) => void;

  constructor(private readonly options: PullConsumerOptions) {
    this.log = options.log ?? ((m) => console.info(m));
  }

  /** Jobs held right now. */
  get inFlight(): number {
    return this.held.size;
  }

  /** Starts the pull loop. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stops pulling; resolves once every held job has been reported and acked or handed back. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.held]);
  }

  private async pause(ms: number): Promise<void> {
    await Promise.race([sleep(ms), new Promise<void>((resolve) => (this.wake = resolve))]);
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      const free = this.options.maxInFlight - this.held.size;
      if (free <= 0) {
        await Promise.race([...this.held, sleep(this.options.idleMs)]);
        continue;
      }
      let messages: PulledMessage[];
      try {
        messages = await this.options.queue.pull(free, this.options.visibilityTimeoutMs);
        failures = 0;
      } catch (error) {
        failures++;
        this.log(`pull: queue pull failed (${String(error)}); backing off`);
        await this.pause(Math.min(30_000, this.options.idleMs * 2 ** Math.min(failures, 5)));
        continue;
      }
      if (messages.length === 0) {
        await this.pause(this.options.idleMs);
        continue;
      }
      for (const message of messages) {
        const task = this.deliver(message).catch((error: unknown) => {
          this.log(`pull: message ${message.id} failed unexpectedly: ${String(error)}`);
          return 'left' as const;
        });
        this.held.add(task);
        task.finally(() => this.held.delete(task));
      }
    }
  }

  private async settle(lease: string, outcome: 'ack' | { retryAfterS: number }): Promise<DeliveryOutcome> {
    try {
      const result =
        outcome === 'ack'
          ? await this.options.queue.ack([lease])
          : await this.options.queue.ack([], [{ lease_id: lease, delay_seconds: outcome.retryAfterS }]);
      for (const [id, warning] of Object.entries(result.warnings)) {
        this.log(`pull: ack warning for lease ${id.slice(0, 12)}...: ${warning}`);
      }
      const settled = outcome === 'ack' ? 'acked' : 'retried';
      this.options.count?.(settled);
      return settled;
    } catch (error) {
      // The lease lapses and the queue redelivers; the edge's claim guard keeps that harmless.
      this.log(`pull: ack failed (${String(error)}); the message will be redelivered`);
      this.options.count?.('left');
      return 'left';
    }
  }

  /** Handles one delivery from claim to ack. */
  private async deliver(message: PulledMessage): Promise<DeliveryOutcome> {
    let job: WorkerJob;
    try {
      const body = decodeMessageBody(message) as { job?: unknown };
      job = WorkerJobSchema.parse(body?.job);
    } catch (error) {
      // Nothing can ever run it: ack so it does not circle until it reaches the dead-letter queue.
      this.log(`pull: message ${message.id} is not a job (${String(error)}); dropped`);
      return this.settle(message.lease_id, 'ack');
    }
    const { edge } = this.options;
    const generation = job.generation_id;
    let claim: Awaited<ReturnType<EdgeClient['claim']>>;
    try {
      claim = await edge.claim(generation, {
        job_id: job.job_id,
        worker_id: this.options.workerId,
        heartbeat_ms: this.options.heartbeatMs,
      });
    } catch (error) {
      this.log(`pull: claim of ${job.job_id} failed (${String(error)}); retrying the message`);
      return this.settle(message.lease_id, { retryAfterS: 10 });
    }
    this.options.count?.(claim.action === 'run' ? 'run' : claim.action === 'defer' ? 'deferred' : 'dropped');
    if (claim.action === 'drop') {
      this.log(`pull: ${job.job_id} (delivery ${message.attempts}) dropped: ${claim.reason}`);
      return this.settle(message.lease_id, 'ack');
    }
    if (claim.action === 'defer') {
      this.log(`pull: ${job.job_id} (delivery ${message.attempts}) deferred: ${claim.reason}`);
      return this.settle(message.lease_id, { retryAfterS: claim.retry_after_s });
    }
    if (this.stopping) {
      await edge
        .event(generation, {
          claim_id: claim.claim_id,
          event: { type: 'release', job_id: job.job_id, reason: 'worker shutting down' },
        })
        .catch(() => undefined);
      return this.settle(message.lease_id, { retryAfterS: 0 });
    }
    this.log(
      `pull: running ${job.job_id} (delivery ${message.attempts}${claim.takeover ? ', taken over' : ''})`,
    );
    return this.runClaimed(message, job, claim.claim_id);
  }

  private async runClaimed(
    message: PulledMessage,
    job: WorkerJob,
    claimId: string,
  ): Promise<DeliveryOutcome> {
    const { edge, scheduler } = this.options;
    const generation = job.generation_id;
    const send = (event: Parameters<EdgeClient['event']>[1]['event']) =>
      edge.event(generation, { claim_id: claimId, event });
    let handle: ReturnType<typeof scheduler.submit>;
    try {
      handle = scheduler.submit(job);
    } catch (error) {
      if (!(error instanceof JobError)) throw error;
      const answer = await send({
        type: 'error',
        job_id: job.job_id,
        code: error.code,
        message: error.message,
        retryable: error.retryable,
      }).catch(() => null);
      return this.settle(message.lease_id, answer?.ack ? 'ack' : { retryAfterS: 5 });
    }
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      scheduler.cancel(job.job_id);
    };
    let lastReport = Date.now();
    const heartbeat = setInterval(() => {
      if (Date.now() - lastReport < this.options.heartbeatMs / 2) return;
      lastReport = Date.now();
      send({ type: 'heartbeat', job_id: job.job_id })
        .then((answer) => answer.stop && stop())
        .catch((error: unknown) => this.log(`pull: heartbeat of ${job.job_id} failed: ${String(error)}`));
    }, this.options.heartbeatMs);
    try {
      for await (const update of handle.messages) {
        if (update.type === 'progress') {
          lastReport = Date.now();
          const answer = await send(update).catch(() => null);
          if (answer?.stop) stop();
          continue;
        }
        clearInterval(heartbeat);
        // The outcome: ack only once the edge has it (a lost result is redelivered, not lost).
        const answer = await send(update).catch((error: unknown) => {
          this.log(`pull: reporting the ${update.type} of ${job.job_id} failed: ${String(error)}`);
          return null;
        });
        if (answer?.ack) return this.settle(message.lease_id, 'ack');
        const retryable = update.type === 'error' ? update.retryable : true;
        return this.settle(message.lease_id, { retryAfterS: retryable ? 0 : 5 });
      }
      return this.settle(message.lease_id, { retryAfterS: 0 });
    } finally {
      clearInterval(heartbeat);
    }
  }
}
