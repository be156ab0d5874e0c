import type { TestProject } from 'vitest/node';
import { startFakeQueues } from './fake-queues.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    fakeQueuesUrl: string;
  }
}

/** Starts the fake Cloudflare Queues pull API (and the relay to real worker processes) for the edge tests. */
export default async function setup(project: TestProject) {
  const { url, stop } = await startFakeQueues();
  project.provide('fakeQueuesUrl', url);
  return stop;
}
