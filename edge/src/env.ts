import type { WorkerJob } from '@contour/shared/contracts';
import type { AccountObject } from './accounts/object.ts';
import type { AuthContext } from './auth/middleware.ts';
import type { BacklogObject } from './dispatch/backlog.ts';
import type { GenerationObject } from './generations/object.ts';
import type { RateLimitBinding } from './ratelimit/middleware.ts';
import type { WebhookDeliveryObject } from './webhooks/object.ts';

/** Bindings and variables of the edge Worker (see the root wrangler.toml). */
export interface Bindings {
  ENVIRONMENT: string;
  GPU_WORKERS: string;
  DISPATCH_BACKEND: string;
  WORKER_SIGNING_SECRET: string;
  EDGE_PREPROCESS_MAX_PIXELS: string;
  CORS_ORIGINS: string;
  PUBLIC_BASE_URL: string;
  /** Replicate API token (secret); empty disables the Replicate backend. */
  REPLICATE_API_TOKEN: string;
  /** Replicate API base URL; empty = the public API. */
  REPLICATE_BASE_URL: string;
  /** Replicate's webhook signing secret (`whsec_...`). */
  REPLICATE_WEBHOOK_SECRET: string;
  /** JSON object pinning model versions, e.g. {"jagilley/controlnet-canny": "<version id>"}. */
  REPLICATE_VERSIONS: string;
  GENERATIONS: DurableObjectNamespace<GenerationObject>;
  IMAGES: R2Bucket;
  JOBS: Queue<QueueMessage>;
  /** `push` (default: the queue consumer streams jobs to `GPU_WORKERS`) or `pull` (workers pull from `PULL_JOBS`). */
  DISPATCH_MODE?: string;
  /** Producer of the queue with an HTTP pull consumer (`contour-jobs-pull`); needed when `DISPATCH_MODE=pull`. */
  PULL_JOBS?: Queue<QueueMessage>;
  /** Bearer token for `GET /worker/v1/metrics` (KEDA's metrics-api scaler); unset = the endpoint is closed. */
  METRICS_TOKEN?: string;
  /** One object holding the pool's backlog (queued/running generations per model and head set). */
  BACKLOG: DurableObjectNamespace<BacklogObject>;
  /** Accounts, keys, the ledger copy, usage and webhook logs. */
  DB: D1Database;
  /** One object per account: balance, holds, idempotency, fallback rate limits. */
  ACCOUNTS: DurableObjectNamespace<AccountObject>;
  /** One object per webhook message: attempts and retries. */
  WEBHOOK_DELIVERIES: DurableObjectNamespace<WebhookDeliveryObject>;
  /** DNS-over-HTTPS JSON endpoint customer hosts are resolved through in production; "" disables it. */
  SSRF_DOH_URL?: string;
  /** HMAC key of signed image URLs; unset = derived from WORKER_SIGNING_SECRET. */
  IMAGE_SIGNING_SECRET?: string;
  /** Lifetime of signed image URLs handed to clients, in seconds (default 3600). */
  IMAGE_URL_TTL_S?: string;
  /** Guards `/v1/admin/*`; unset = the admin API is closed. */
  ADMIN_SECRET?: string;
  /** Workers Rate Limiting bindings; absent = the account object's buckets are used. */
  KEY_RATE_LIMITER?: RateLimitBinding;
  ACCOUNT_RATE_LIMITER?: RateLimitBinding;
}

/** What travels on the jobs queue: the full job (it is well under the 128 KB message limit). */
export interface QueueMessage {
  job: WorkerJob;
}

/** Hono environment: bindings plus per-request variables set by middleware. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: { requestId: string; auth?: AuthContext };
}

/** True outside production: allows http:// image URLs and loopback workers. */
export function isLocal(env: Pick<Bindings, 'ENVIRONMENT'>): boolean {
  return env.ENVIRONMENT !== 'production';
}

// Types `env` from `cloudflare:workers` / `cloudflare:test` as these bindings. Written by hand rather than
// generated with `wrangler types`, whose CLI needs Node 22; keep in step with wrangler.toml.
declare global {
  namespace Cloudflare {
    interface Env extends Bindings {}
  }
}
