import type { TestProject } from 'vitest/node';
import { startFakeReplicate } from './fake-replicate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    fakeReplicateUrl: string;
  }
}

/** Starts the fake Replicate API before the edge tests. */
export default async function setup(project: TestProject) {
  const { url, server } = await startFakeReplicate();
  project.provide('fakeReplicateUrl', url);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
