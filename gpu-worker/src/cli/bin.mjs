#!/usr/bin/env node
// `contour-worker` entry for npm's bin link: registers tsx (the worker runs from its TypeScript sources), then
// runs the CLI. Plain JavaScript because a shebang cannot pass `--import tsx` portably.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('./index.ts');
process.exitCode = await runCli(process.argv.slice(2));
