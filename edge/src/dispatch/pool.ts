/**
 * The GPU worker pool as seen from one isolate: health-aware, least-busy selection. State is per isolate
 * (queue consumers of one deployment share few isolates); a worker that fails is skipped for a cooldown,
 * a worker that answers 429 is skipped for its Retry-After.
 */

/** How long a worker that failed (network error, 5xx) is skipped. */
export const UNHEALTHY_COOLDOWN_MS = 30_000;

interface WorkerHealth {
  inFlight: number;
  skipUntil: number;
}

const health = new Map<string, WorkerHealth>();

function entry(url: string): WorkerHealth {
  let h = health.get(url);
  if (!h) {
    h = { inFlight: 0, skipUntil: 0 };
    health.set(url, h);
  }
  return h;
}

/** Worker base URLs from the comma-separated `GPU_WORKERS` variable. */
export function parseWorkerPool(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter((s) => s.length > 0);
}

/** Workers in the order to try them: available ones by fewest jobs in flight, then skipped ones. */
export function workerOrder(pool: readonly string[], now = Date.now()): string[] {
  const scored = pool.map((url, i) => ({ url, h: entry(url), tie: (i + now) % pool.length }));
  return scored
    .sort(
      (a, b) =>
        Number(a.h.skipUntil > now) - Number(b.h.skipUntil > now) ||
        a.h.inFlight - b.h.inFlight ||
        a.tie - b.tie,
    )
    .map((s) => s.url);
}

/** Marks a job started on a worker; call the returned function when it ends. */
export function acquire(url: string): () => void {
  const h = entry(url);
  h.inFlight += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    h.inFlight = Math.max(0, h.inFlight - 1);
  };
}

/** Skips a worker for `ms` (failure cooldown or its Retry-After). */
export function skipWorker(url: string, ms: number, now = Date.now()): void {
  entry(url).skipUntil = now + ms;
}

/** Forgets all pool state (tests). */
export function resetPoolState(): void {
  health.clear();
}
