/** `npm start`'s whole local stack for end-to-end tests: free ports, start, stop. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A free TCP port on localhost. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A running stack: the process and the playground URL it printed (`…#key=sk_…`). */
export interface Stack {
  child: ChildProcess;
  playground: string;
}

/** Starts `node scripts/start.mjs` and resolves with the playground URL it prints. */
export function startStack(env: Record<string, string>): Promise<Stack> {
  const child = spawn(process.execPath, ['scripts/start.mjs'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /playground\s+(http:\/\/\S+#key=sk_\w+)/.exec(output);
      if (match && output.includes('Ctrl-C stops everything')) resolve({ child, playground: match[1]! });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`npm start exited (${code}) before it was up:\n${output}`)),
    );
  });
}

/** Stops a stack started by {@link startStack} (Ctrl-C, as a person would). */
export async function stopStack(stack: Stack | undefined): Promise<void> {
  if (!stack || stack.child.exitCode !== null) return;
  const exited = new Promise((resolve) => stack.child.once('exit', resolve));
  stack.child.kill('SIGINT');
  await exited;
}
