// The edge's Canny path for a 512x512 PNG upload (decode + canny + encode PNG + store in R2), measured inside
// workerd: the Workers CPU limit (10 ms on the free plan) applies there, not to Node. Starts
// edge-path.worker.ts under wrangler's dev server (real workerd, local R2) and reads workerd's own CPU time
// (/proc/PID/stat) across many requests, minus the same number of empty requests; also prints each stage's
// time as the Worker sees it. Run: npx tsx edge/bench/edge-path.bench.ts  (also part of `npm run bench`).
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { unstable_startWorker } from 'wrangler';

process.env['CLOUDFLARE_CF_FETCH_ENABLED'] ??= 'false';
process.env['WRANGLER_SEND_METRICS'] ??= 'false';
process.env['WRANGLER_LOG'] ??= 'error';

const TARGET_MS = 10;
const REQUESTS = 60;
const ROUNDS = 3;
const png = readFileSync(
  fileURLToPath(new URL('../../shared/test/fixtures/canny/house.in.png', import.meta.url)),
);

/** Pids of every process below this one (wrangler starts workerd as a child). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** User + system CPU seconds of each workerd process under this one, by pid. */
function workerdCpuSeconds(): Map<number, number> {
  const tick = 100; // USER_HZ on Linux
  const cpu = new Map<number, number>();
  for (const pid of descendants(process.pid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'workerd') continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(pid, (Number(fields[11]) + Number(fields[12])) / tick);
    } catch {
      // exited meanwhile
    }
  }
  return cpu;
}

if (process.platform !== 'linux') {
  console.log('edge path in workerd: skipped (reads workerd CPU time from /proc; Linux only)');
  process.exit(0);
}

const worker = await unstable_startWorker({
  config: fileURLToPath(new URL('./wrangler.bench.toml', import.meta.url)),
  dev: { server: { hostname: '127.0.0.1', port: 0 }, inspector: false, watch: false, persist: false },
});
try {
  await worker.ready;
  if (workerdCpuSeconds().size === 0) throw new Error('no workerd process found under this one');
  const post = (path: string) => worker.fetch(`http://bench${path}`, { method: 'POST', body: png });
  for (let i = 0; i < 10; i++) await (await post('/path')).text(); // warm up: JIT, R2 files
  const measure = async (path: string) => {
    const before = workerdCpuSeconds();
    for (let i = 0; i < REQUESTS; i++) await (await post(path)).text();
    let seconds = 0;
    for (const [pid, after] of workerdCpuSeconds()) seconds += after - (before.get(pid) ?? 0);
    return (seconds * 1000) / REQUESTS;
  };
  // Three interleaved rounds, the lowest of each kind: other load on the machine only ever adds CPU time.
  let full = Number.POSITIVE_INFINITY;
  let empty = Number.POSITIVE_INFINITY;
  let store = Number.POSITIVE_INFINITY;
  for (let round = 0; round < ROUNDS; round++) {
    full = Math.min(full, await measure('/path'));
    empty = Math.min(empty, await measure('/noop'));
    store = Math.min(store, await measure('/store'));
  }
  const stages = (await (await post(`/path?n=${REQUESTS}`)).json()) as Record<string, number[]>;
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1] as number;
  const perRun = Object.fromEntries(
    Object.entries(stages).map(([k, v]) => [k, `${median(v).toFixed(1)} (min ${Math.min(...v).toFixed(1)})`]),
  );
  const path = full - empty;
  const compute = full - store;
  console.log(
    '512x512 PNG (house.in.png) through decode + canny 100/200 + encode PNG + R2 put, inside workerd',
  );
  console.log(`  stage wall time seen by the Worker, ms, median (min) of ${REQUESTS} runs:`, perRun);
  console.log(
    `  workerd CPU per request (mean of ${REQUESTS}, lowest of ${ROUNDS} rounds): ${full.toFixed(2)} ms with the path, ${empty.toFixed(2)} ms ` +
      `for an empty request with the same upload, ${store.toFixed(2)} ms for one that only puts into local R2`,
  );
  console.log(
    `  edge path CPU: ${path.toFixed(2)} ms including local R2's own work, ${compute.toFixed(2)} ms without it ` +
      `(decode + canny + encode + the put call); target < ${TARGET_MS} ms: ${compute < TARGET_MS ? 'met' : 'NOT met'}`,
  );
} finally {
  await worker.dispose();
}
