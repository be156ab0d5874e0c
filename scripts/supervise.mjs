// Keeps a child process running for `npm start`: restarts it with exponential backoff when it dies.

/**
 * Restarts `spawnChild()` whenever its process exits, waiting `minMs` doubling to `maxMs` between restarts,
 * back to `minMs` after the child stayed up `stableMs`. `isStopping()` true ends supervision. Returns a
 * function that reports how many restarts happened.
 * @param {import('node:child_process').ChildProcess} first the already started child
 * @param {{ spawnChild: () => import('node:child_process').ChildProcess, isStopping: () => boolean,
 *   minMs?: number, maxMs?: number, stableMs?: number,
 *   onExit?: (code: number | null, signal: string | null, delayMs: number) => void,
 *   onRestart?: (child: import('node:child_process').ChildProcess) => void }} options
 */
export function supervise(first, options) {
  const { spawnChild, isStopping, minMs = 1000, maxMs = 30_000, stableMs = 60_000 } = options;
  let delay = minMs;
  let restarts = 0;
  const watch = (child, startedAt) => {
    child.once('exit', (code, signal) => {
      if (isStopping()) return;
      if (Date.now() - startedAt > stableMs) delay = minMs;
      options.onExit?.(code, signal, delay);
      setTimeout(() => {
        if (isStopping()) return;
        restarts++;
        const next = spawnChild();
        options.onRestart?.(next);
        watch(next, Date.now());
      }, delay).unref();
      delay = Math.min(maxMs, delay * 2);
    });
  };
  watch(first, Date.now());
  return () => restarts;
}
