import { z } from 'zod';
import { WorkerMessageSchema } from './job.ts';

/**
 * Pull mode (worker -> edge callbacks, signed like edge -> worker requests): a worker that pulled a job from
 * the queue claims it, reports heartbeats and progress, then posts the result or the error. Paths:
 * `POST /worker/v1/generations/{id}/claim` and `POST /worker/v1/generations/{id}/events`.
 */
export const PULL_CALLBACK_PREFIX = '/worker/v1/generations';

/** Worker -> edge: may I run this delivery of the job? */
export const PullClaimRequestSchema = z.object({
  job_id: z.string().min(1).max(128),
  /** Stable name of the worker (pod name), for logs and the claim record. */
  worker_id: z.string().min(1).max(200),
  /** The worker reports at least this often while it holds the job (ms). */
  heartbeat_ms: z.int().min(1).max(3_600_000),
});
export type PullClaimRequest = z.infer<typeof PullClaimRequestSchema>;

/** Edge -> worker: run it (with this claim id), defer (retry the message later), or drop (ack it). */
export const PullClaimResponseSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('run'), claim_id: z.string(), takeover: z.boolean() }),
  z.object({ action: z.literal('defer'), retry_after_s: z.int().min(1), reason: z.string() }),
  z.object({ action: z.literal('drop'), reason: z.string() }),
]);
export type PullClaimResponse = z.infer<typeof PullClaimResponseSchema>;

/** Worker -> edge: what the claim holder has to say (a WorkerMessage, a heartbeat, or giving the job back). */
export const PullEventSchema = z.object({
  claim_id: z.string().min(1).max(100),
  event: z.union([
    WorkerMessageSchema,
    z.object({ type: z.literal('heartbeat'), job_id: z.string() }),
    z.object({ type: z.literal('release'), job_id: z.string(), reason: z.string().max(500) }),
  ]),
});
export type PullEvent = z.infer<typeof PullEventSchema>;

/**
 * Edge -> worker answer to an event. `stop`: stop working on it (canceled, finished elsewhere, claim lost).
 * `ack`: the edge has recorded the outcome (or never will need it), so the worker acks the queue message.
 */
export const PullEventResponseSchema = z.object({ stop: z.boolean(), ack: z.boolean(), reason: z.string() });
export type PullEventResponse = z.infer<typeof PullEventResponseSchema>;
