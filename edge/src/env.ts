import type { WorkerJob } from '@contour/shared/contracts';
import type { GenerationObject } from './generations/object.ts';

/** Bindings and variables of the edge Worker (see the root wrangler.toml). */
export interface Bindings {
  ENVIRONMENT: string;
  GPU_WORKERS: string;
  DISPATCH_BACKEND: string;
  WORKER_SIGNING_SECRET: string;
  EDGE_PREPROCESS_MAX_PIXELS: string;
  CORS_ORIGINS: string;
  PUBLIC_BASE_URL: string;
  GENERATIONS: DurableObjectNamespace<GenerationObject>;
  IMAGES: R2Bucket;
  JOBS: Queue<QueueMessage>;
}

/** What travels on the jobs queue: the full job (it is well under the 128 KB message limit). */
export interface QueueMessage {
  job: WorkerJob;
}

/** Hono environment: bindings plus per-request variables set by middleware. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: { requestId: string };
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
