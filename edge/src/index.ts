import { createApp } from './app.ts';
import { consumeDeadLetters, consumeJobs } from './dispatch/consumer.ts';
import type { Bindings, QueueMessage } from './env.ts';
import { fallbackErrorResponse } from './lib/errors.ts';

export { AccountObject } from './accounts/object.ts';
export { BacklogObject } from './dispatch/backlog.ts';
export { GenerationObject } from './generations/object.ts';
export { WebhookDeliveryObject } from './webhooks/object.ts';

const app = createApp();

/** The Worker: HTTP API plus the jobs queue consumer and its dead-letter consumer. */
export default {
  // The app answers its own errors; this catches what escapes it (a throw outside any handler).
  async fetch(request, env, ctx) {
    try {
      return await app.fetch(request, env, ctx);
    } catch (error) {
      console.error('request failed outside the app', error);
      return fallbackErrorResponse();
    }
  },
  async queue(batch: MessageBatch<QueueMessage>, env: Bindings): Promise<void> {
    if (batch.queue.endsWith('-dlq')) await consumeDeadLetters(batch, env);
    else await consumeJobs(batch, env);
  },
} satisfies ExportedHandler<Bindings, QueueMessage>;
