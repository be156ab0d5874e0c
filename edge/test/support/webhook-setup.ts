import type { TestProject } from 'vitest/node';
import { startWebhookReceiver } from './webhook-receiver.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    webhookReceiverUrl: string;
  }
}

/** Starts the webhook receiver before the edge tests and hands its URL to the workerd config. */
export default async function setup(project: TestProject) {
  const { url, server } = await startWebhookReceiver();
  project.provide('webhookReceiverUrl', url);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
