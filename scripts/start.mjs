#!/usr/bin/env node
// `npm start`: the whole local stack on its embedded defaults.
//   1. the GPU worker (gpu-worker/src/main.ts; its built-in model unless weights are configured),
//   2. the edge under wrangler's dev server (workerd with local D1/R2/Durable Objects/Queues), started
//      through wrangler's programmatic API, which also works on Node 20 (the wrangler CLI needs Node 22),
//      behind scripts/front.mjs on CONTOUR_EDGE_PORT (it answers cut-short bodies with the error envelope),
//   3. D1 migrations applied, a dev account with credits, and its API key printed with the playground URL.
// The worker is restarted (with backoff) if it dies; Ctrl-C stops everything.
// Settings (environment): CONTOUR_EDGE_PORT (8787), CONTOUR_WORKER_PORT (8790),
// CONTOUR_WORKER_URL (use a running worker instead of starting one), CONTOUR_STATE_DIR (.wrangler/state),
// CONTOUR_DEV_API_KEY (a fixed dev key; otherwise one is made once and kept in the state dir).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import {
  getPlatformProxy,
  unstable_readConfig,
  unstable_splitSqlQuery,
  unstable_startWorker,
} from 'wrangler';
import { buildPlaygroundAssets, GENERATED_PATH } from '../edge/src/playground/build.mjs';
import { startFront } from './front.mjs';
import { supervise } from './supervise.mjs';

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false'; // no outbound call for the Request.cf placeholder
process.env.WRANGLER_SEND_METRICS ??= 'false';
// wrangler's info lines (its bindings table, each request) are noise on first run; WRANGLER_LOG=info shows them.
process.env.WRANGLER_LOG ??= 'warn';

const root = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
process.chdir(root);

const EDGE_PORT = Number(process.env.CONTOUR_EDGE_PORT ?? 8787);
const WORKER_PORT = Number(process.env.CONTOUR_WORKER_PORT ?? 8790);
const STATE_DIR = path.resolve(process.env.CONTOUR_STATE_DIR ?? '.wrangler/state');
const CONFIG = 'wrangler.toml';
/** How long the worker may take to load its model before start-up is abandoned. */
const WORKER_READY_TIMEOUT_MS = 180_000;
/** Same table wrangler's `d1 migrations apply` keeps, so both agree on what is applied. */
const MIGRATIONS_TABLE = 'd1_migrations';

const children = [];
let edge;
let front;
let stopping = false;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  front?.close();
  await edge?.dispose().catch(() => {});
  await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
// wrangler installs its own signal handlers and may exit first: never leave a child behind.
process.on('exit', () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
});

function fail(message) {
  console.error(`npm start: ${message}`);
  return stop(1);
}

/** Rebuilds the playground page when page.html, app.js or the SDK changed (cheap: one esbuild run). */
async function buildPlayground() {
  const source = await buildPlaygroundAssets();
  const current = await readFile(GENERATED_PATH, 'utf8').catch(() => '');
  if (current !== source) await writeFile(GENERATED_PATH, source);
}

async function waitFor(url, timeoutMs, isAlive) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!isAlive()) throw new Error(`the process serving ${url} exited`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} was not ready within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function spawnGpuWorker() {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gpu-worker/src/main.ts'], {
    env: { ...process.env, PORT: String(WORKER_PORT) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(child);
  child.once('exit', () => {
    const index = children.indexOf(child);
    if (index >= 0) children.splice(index, 1);
  });
  return child;
}

/**
 * Starts the GPU worker and keeps it running: if it dies after start-up (a crash, an OOM kill), it is
 * restarted with backoff (1 s doubling to 30 s; scripts/supervise.mjs) while the edge keeps serving and
 * the queue retries jobs meanwhile. Dying before its first readiness still stops `npm start`: that is a
 * setup problem a restart will not fix.
 */
async function startGpuWorker() {
  const url = `http://127.0.0.1:${WORKER_PORT}`;
  const first = spawnGpuWorker();
  let ready = false;
  first.once('exit', (code, signal) => {
    if (!ready && !stopping) fail(`the GPU worker exited during start-up (${signal ?? code})`);
  });
  await waitFor(`${url}/readyz`, WORKER_READY_TIMEOUT_MS, () => first.exitCode === null);
  ready = true;
  supervise(first, {
    spawnChild: spawnGpuWorker,
    isStopping: () => stopping,
    onExit: (code, signal, delayMs) =>
      console.error(
        `npm start: the GPU worker exited (${signal ?? code}); restarting in ${delayMs / 1000} s`,
      ),
  });
  return url;
}

/** Applies edge/migrations/*.sql that the local D1 has not seen, in name order, like wrangler does. */
async function applyMigrations() {
  const config = unstable_readConfig({ config: CONFIG });
  const database = config.d1_databases.find((d) => d.binding === 'DB');
  if (!database) throw new Error(`${CONFIG} has no D1 database bound as DB`);
  const directory = path.resolve(database?.migrations_dir ?? 'migrations');
  // The proxy gets a config holding only the D1 binding: given wrangler.toml it would also bind the Durable
  // Objects, whose classes only the edge's own script exports, and wrangler and workerd would warn about each.
  const d1Config = path.join(STATE_DIR, 'migrations.wrangler.json');
  await mkdir(STATE_DIR, { recursive: true });
  await writeFile(
    d1Config,
    JSON.stringify({
      name: `${config.name}-migrations`,
      compatibility_date: config.compatibility_date,
      d1_databases: [
        { binding: 'DB', database_name: database.database_name, database_id: database.database_id },
      ],
    }),
  );
  const proxy = await getPlatformProxy({
    configPath: d1Config,
    persist: { path: path.join(STATE_DIR, 'v3') },
  });
  try {
    const db = proxy.env.DB;
    await db
      .prepare(
        `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE,
         applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)`,
      )
      .run();
    const { results } = await db.prepare(`SELECT name FROM ${MIGRATIONS_TABLE}`).all();
    const applied = new Set(results.map((row) => row.name));
    const files = (await readdir(directory)).filter((name) => name.endsWith('.sql')).sort();
    const fresh = [];
    for (const name of files.filter((file) => !applied.has(file))) {
      const statements = unstable_splitSqlQuery(await readFile(path.join(directory, name), 'utf8'));
      await db.batch([
        ...statements.map((sql) => db.prepare(sql)),
        db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (name) VALUES (?)`).bind(name),
      ]);
      fresh.push(name);
    }
    return fresh;
  } finally {
    await proxy.dispose();
  }
}

async function devApiKey() {
  if (process.env.CONTOUR_DEV_API_KEY) return process.env.CONTOUR_DEV_API_KEY;
  const file = path.join(STATE_DIR, 'contour-dev-api-key');
  const stored = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (stored) return stored;
  const key = `sk_dev_${randomBytes(24).toString('hex')}`;
  await mkdir(STATE_DIR, { recursive: true });
  await writeFile(file, `${key}\n`, { mode: 0o600 });
  return key;
}

async function main() {
  await buildPlayground();
  const workerUrl = process.env.CONTOUR_WORKER_URL || (await startGpuWorker());
  const migrations = await applyMigrations();
  const config = unstable_readConfig({ config: CONFIG });
  edge = await unstable_startWorker({
    config: CONFIG,
    bindings: { GPU_WORKERS: { type: 'plain_text', value: workerUrl } },
    dev: {
      // An internal port: scripts/front.mjs listens on EDGE_PORT in front of it.
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      watch: false,
      persist: STATE_DIR,
    },
  });
  await edge.ready;
  front = await startFront(EDGE_PORT, Number((await edge.url).port));
  const edgeUrl = `http://127.0.0.1:${EDGE_PORT}`;
  const adminSecret = config.vars.ADMIN_SECRET;
  const response = await fetch(`${edgeUrl}/v1/admin/bootstrap`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminSecret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ api_key: await devApiKey() }),
  });
  if (!response.ok) throw new Error(`bootstrapping the dev account failed: ${await response.text()}`);
  const dev = await response.json();

  console.log(`
Contour local stack is up
  playground    ${edgeUrl}/#key=${dev.api_key}
  edge API      ${edgeUrl}   (OpenAPI: ${edgeUrl}/openapi.json, health: ${edgeUrl}/healthz)
  GPU worker    ${workerUrl}
  dev account   ${dev.account.id} with ${dev.available.toLocaleString('en')} credits
  API key       ${dev.api_key}
  migrations    ${migrations.length ? `applied ${migrations.join(', ')}` : 'up to date'}
Ctrl-C stops everything.`);
}

main().catch((error) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));
