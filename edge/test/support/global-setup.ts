import type { TestProject } from 'vitest/node';
import { startFakeGpuWorker } from './fake-gpu-worker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    fakeWorkerUrl: string;
  }
}

/** Starts the fake GPU worker before the edge tests and hands its URL to the workerd config. */
export default async function setup(project: TestProject) {
  const { url, server } = await startFakeGpuWorker();
  project.provide('fakeWorkerUrl', url);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
