/**
 * The GPU worker process: `node --import tsx gpu-worker/src/main.ts` (settings from the environment, see
 * gpu-worker/README.md). SIGTERM/SIGINT stop it gracefully; it exits 0 once running work is finished or handed
 * back.
 */
import { loadServiceConfig } from './service/config.ts';
import { startWorker } from './service/server.ts';

const config = loadServiceConfig();
const worker = await startWorker(config);
worker.loaded.catch((error: unknown) => {
  console.error(
    `worker: loading the models failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
});

let signals = 0;
const onSignal = (signal: string) => {
  signals++;
  if (signals > 1) {
    console.error(`worker: second ${signal}, exiting now`);
    process.exit(1);
  }
  worker.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error('worker: shutdown failed', error);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));
