#!/usr/bin/env node
// `npm run bench`: runs every `<package>/bench/*.bench.ts` in turn and prints their tables. `npm run bench <text>`
// runs those whose path contains <text> (further arguments go to each of them). Benches that take many minutes run only when <text> names them (see OPT_IN);
// the default set runs them with CONTOUR_BENCH_DEFAULT_SET=1, and they do only their quick part or say how to run them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const packages = ['shared', 'edge', 'gpu-worker', 'sdk'];
const filter = process.argv[2];
/** Slow benches: their full run only when the filter selects them (`npm run bench preprocessors`). */
const OPT_IN = ['gpu-worker/bench/preprocessors.bench.ts'];
let failed = 0;
for (const pkg of packages) {
  const dir = join(pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort()) {
    const path = join(dir, file);
    if (filter && !path.includes(filter)) continue;
    console.log(`\n=== ${path} ===`);
    const env =
      !filter && OPT_IN.includes(path) ? { ...process.env, CONTOUR_BENCH_DEFAULT_SET: '1' } : process.env;
    const result = spawnSync(process.execPath, ['--import', 'tsx', path, ...process.argv.slice(3)], {
      stdio: 'inherit',
      env,
    });
    if (result.status !== 0) failed++;
  }
}
process.exit(failed ? 1 : 0);
