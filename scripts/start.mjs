#!/usr/bin/env node
// `npm start`: the whole local stack on its embedded defaults.
// The edge runs under wrangler's dev server (workerd with local D1/R2/Durable Objects/Queues) through
// wrangler's programmatic API, which also works on Node 20 (the wrangler CLI itself needs Node 22).
import process from 'node:process';
import { unstable_startWorker } from 'wrangler';

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false'; // no outbound call for the Request.cf placeholder
process.env.WRANGLER_SEND_METRICS ??= 'false';

const EDGE_PORT = Number(process.env.CONTOUR_EDGE_PORT ?? 8787);

const edge = await unstable_startWorker({
  config: 'wrangler.toml',
  dev: { server: { hostname: '127.0.0.1', port: EDGE_PORT }, inspector: false, watch: true },
});
await edge.ready;

console.log(`
Contour local stack is up
  edge API      http://127.0.0.1:${EDGE_PORT}
  health        http://127.0.0.1:${EDGE_PORT}/healthz
  OpenAPI       http://127.0.0.1:${EDGE_PORT}/openapi.json
Ctrl-C stops everything.`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await edge.dispose().catch(() => {});
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
