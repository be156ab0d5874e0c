import { type ChildProcess, spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { supervise } from '../scripts/supervise.mjs';

/** A real child process that exits with `code` after `ms`. */
const child = (code: number, ms: number): ChildProcess =>
  spawn(process.execPath, ['-e', `setTimeout(() => process.exit(${code}), ${ms})`], { stdio: 'ignore' });

describe('scripts/supervise.mjs (npm start keeps the worker running)', () => {
  it('restarts a dying process with doubling delays, and stops when told to', async () => {
    let stopping = false;
    const delays: number[] = [];
    const started: number[] = [Date.now()];
    const restarts: () => number = supervise(child(1, 10), {
      spawnChild: () => child(1, 10),
      isStopping: () => stopping,
      minMs: 50,
      maxMs: 200,
      stableMs: 60_000,
      onExit: (_code: number | null, _signal: string | null, delayMs: number) => delays.push(delayMs),
      onRestart: () => started.push(Date.now()),
    });
    while (restarts() < 4) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(delays.slice(0, 4)).toEqual([50, 100, 200, 200]);
    // Each restart waited at least its delay after the previous start.
    for (let i = 1; i < 4; i++) expect(started[i]! - started[i - 1]!).toBeGreaterThanOrEqual(delays[i - 1]!);
    stopping = true;
    const count = restarts();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(restarts()).toBeLessThanOrEqual(count + 1);
  });
});
