import type { WorkerJob } from '@contour/shared/contracts';
import type { Bindings } from '../env.ts';

/** How jobs reach the GPU workers: `push` (the edge streams each job to a worker) or `pull` (workers pull). */
export type DispatchMode = 'push' | 'pull';

/** The deployment's dispatch mode (`DISPATCH_MODE`, default push). */
export function dispatchMode(env: Pick<Bindings, 'DISPATCH_MODE'>): DispatchMode {
  return env.DISPATCH_MODE === 'pull' ? 'pull' : 'push';
}

/**
 * Enqueues a job. Push mode: `JOBS`, whose Worker consumer dispatches it. Pull mode: `PULL_JOBS`, a queue with
 * an HTTP pull consumer that GPU workers poll; sent as `json` because pull consumers cannot decode `v8`.
 */
export async function enqueueJob(
  env: Pick<Bindings, 'DISPATCH_MODE' | 'JOBS' | 'PULL_JOBS'>,
  job: WorkerJob,
): Promise<void> {
  if (dispatchMode(env) === 'push') {
    await env.JOBS.send({ job });
    return;
  }
  if (!env.PULL_JOBS) throw new Error('DISPATCH_MODE=pull needs the PULL_JOBS queue binding');
  await env.PULL_JOBS.send({ job }, { contentType: 'json' });
}
