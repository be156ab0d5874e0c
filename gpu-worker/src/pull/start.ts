import type { PullConfig } from '../service/config.ts';
import type { WorkerMetrics } from '../service/metrics.ts';
import type { JobScheduler } from '../service/scheduler.ts';
import { PullConsumer } from './consumer.ts';
import { EdgeClient } from './edge-client.ts';
import { QueuesPullClient } from './queues-api.ts';

/** Builds and starts the pull consumer of a loaded worker (`CONTOUR_MODE=pull`). */
export function startPullConsumer(
  config: PullConfig,
  signingSecret: string,
  scheduler: JobScheduler,
  metrics: WorkerMetrics,
  log: (message: string) => void,
): PullConsumer {
  const consumer = new PullConsumer({
    queue: new QueuesPullClient({
      baseUrl: config.apiBaseUrl,
      accountId: config.accountId,
      queueId: config.queueId,
      apiToken: config.apiToken,
    }),
    edge: new EdgeClient({ baseUrl: config.edgeUrl, signingSecret }),
    scheduler,
    workerId: config.workerId,
    maxInFlight: config.maxInFlight,
    visibilityTimeoutMs: config.visibilityTimeoutMs,
    heartbeatMs: config.heartbeatMs,
    idleMs: config.idleMs,
    log,
    count: (outcome) => metrics.pullDeliveries.inc({ outcome }),
  });
  consumer.start();
  log(`worker: pull mode, queue ${config.queueId}, callbacks to ${config.edgeUrl}, as ${config.workerId}`);
  return consumer;
}
