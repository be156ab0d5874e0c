#!/usr/bin/env node
// `npm run bench`: runs every `<package>/bench/*.bench.ts` in turn and prints their tables.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const packages = ['shared', 'edge', 'gpu-worker', 'sdk'];
const filter = process.argv[2];
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
    const result = spawnSync(process.execPath, ['--import', 'tsx', path], { stdio: 'inherit' });
    if (result.status !== 0) failed++;
  }
}
process.exit(failed ? 1 : 0);
