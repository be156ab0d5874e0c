import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Which TensorFlow.js backend to use; `tensorflow-gpu` and `tensorflow` need the optional native packages. */
export type BackendChoice = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** The backend that was chosen: tfjs backend name and the npm package that provides it. */
export interface BackendInfo {
  name: string;
  package: string;
}

/** Options for {@link initBackend}. */
export interface InitBackendOptions {
  /** Use exactly this backend (else `CONTOUR_TF_BACKEND`, else the best one installed). */
  force?: BackendChoice;
  /** Where to log the choice (default console.info). */
  log?: (message: string) => void;
}

/** Raised when a forced backend is unknown or cannot be loaded. */
export class BackendError extends Error {
  override readonly name = 'BackendError';
  constructor(
    readonly code: 'backend_unknown' | 'backend_unavailable',
    message: string,
  ) {
    super(message);
  }
}

const CHOICES: readonly BackendChoice[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

const PACKAGES: Record<BackendChoice, string> = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
};

let initialised: Promise<BackendInfo> | undefined;

/**
 * Imports a package by a name held in a variable, so bundlers and TypeScript do not require the optional
 * native packages to exist (their install script downloads libtensorflow, so they are never dependencies).
 */
async function importOptional(name: string): Promise<Record<string, unknown>> {
  return (await import(/* @vite-ignore */ name)) as Record<string, unknown>;
}

async function activate(choice: BackendChoice): Promise<BackendInfo> {
  const pkg = PACKAGES[choice];
  if (choice === 'tensorflow-gpu' || choice === 'tensorflow') {
    await importOptional(pkg);
    if (!(await tf.setBackend('tensorflow')))
      throw new Error(`${pkg} did not register the tensorflow backend`);
  } else if (choice === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from disk: point the loader at the installed package's dist folder.
    const require = createRequire(import.meta.url);
    const distDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${distDir}/`);
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialise');
  } else if (!(await tf.setBackend('cpu'))) {
    throw new Error('the cpu backend failed to initialise');
  }
  await tf.ready();
  return { name: tf.getBackend(), package: pkg };
}

async function choose(options: InitBackendOptions): Promise<BackendInfo> {
  const log = options.log ?? ((message: string) => console.info(message));
  const forced = options.force ?? (process.env['CONTOUR_TF_BACKEND'] || undefined);
  if (forced !== undefined) {
    if (!CHOICES.includes(forced as BackendChoice)) {
      throw new BackendError(
        'backend_unknown',
        `unknown backend "${forced}", expected one of ${CHOICES.join(', ')}`,
      );
    }
    try {
      const info = await activate(forced as BackendChoice);
      log(`tfjs backend: ${info.name} (${info.package}, forced)`);
      return info;
    } catch (error) {
      throw new BackendError('backend_unavailable', `backend ${forced} is unavailable: ${String(error)}`);
    }
  }
  for (const choice of ['tensorflow-gpu', 'tensorflow', 'wasm'] as const) {
    try {
      const info = await activate(choice);
      log(`tfjs backend: ${info.name} (${info.package})`);
      return info;
    } catch {
      // Not installed or not loadable on this machine: try the next one.
    }
  }
  const info = await activate('cpu');
  log(`tfjs backend: ${info.name} (${info.package}, fallback)`);
  return info;
}

/**
 * Selects the fastest TensorFlow.js backend available: tfjs-node-gpu, then tfjs-node, then wasm (cpu as last
 * resort). Idempotent: later calls return the first call's result, whatever their options.
 */
export function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  if (!initialised) {
    initialised = choose(options);
    initialised.catch(() => {
      initialised = undefined;
    });
  }
  return initialised;
}
