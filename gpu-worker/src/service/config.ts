import { dirname, join } from 'node:path';
import { type ControlType, ControlTypeSchema } from '@contour/shared/contracts';
import { BUILTIN_MODELS, type BuiltinModelName, builtinModelNamed } from '../registry/registry.ts';

/** Runtime settings of the worker service, from the environment. */
export interface ServiceConfig {
  port: number;
  host: string;
  /** Accepted signing secrets (comma-separated in the env, so keys rotate without downtime). */
  signingSecrets: string[];
  /** Path of the model config file; undefined runs the built-in model. */
  modelConfigPath: string | undefined;
  /** Control types the built-in model serves (default all); lets a test or demo leave heads out. */
  builtinHeads: ControlType[] | undefined;
  /** Which built-in model runs without a model config: the trained `circles` model (default) or `random`. */
  builtinModel: BuiltinModelName;
  /** Jobs that may wait behind the running one before new ones get 429. */
  queueSize: number;
  /** Most jobs run together as one micro-batch (1 disables micro-batching). */
  maxBatch: number;
  /**
   * Most output pixels (sum of width x height x num_images) in one micro-batch; a job larger than this still runs,
   * alone. Undefined picks by backend: on CPU backends batching raised throughput at 256x256 and lowered it at
   * 512x512 (gpu-worker/bench/service.bench.ts), so 4 x 256 x 256 there, 4 x 512 x 512 on tensorflow-gpu.
   */
  maxBatchPixels: number | undefined;
  /** Most images (sum of num_images) in one micro-batch. */
  maxBatchImages: number;
  /** How long a finished device waits for compatible jobs before starting a partial batch, in ms. */
  batchWindowMs: number;
  /** Signed requests older than this are refused (seconds). */
  replayWindowS: number;
  /** Signed requests this far in the future are still accepted (seconds). */
  clockSkewS: number;
  /** On SIGTERM, how long running work may go on before it is handed back (ms). */
  shutdownGraceMs: number;
  imageFetchTimeoutMs: number;
  maxImageBytes: number;
  /**
   * Folder of the annotator checkpoints the network preprocessors load (`CONTOUR_ANNOTATOR_DIR`; default the
   * `annotators/` folder beside the model config, where infra/download-weights.mjs puts them).
   */
  annotatorDir: string | undefined;
  /** Memory budget of loaded annotator models (`CONTOUR_PREPROCESSOR_MEMORY_MB`; default the heads' budget). */
  preprocessorBudgetBytes: number | undefined;
  /** Pull mode (`CONTOUR_MODE=pull`): jobs come from the Cloudflare queue, not from `POST /v1/jobs`. */
  pull: PullConfig | undefined;
}

/** Pull-mode settings (see gpu-worker/src/pull). */
export interface PullConfig {
  /** Cloudflare API base (`https://api.cloudflare.com/client/v4`). */
  apiBaseUrl: string;
  accountId: string;
  queueId: string;
  /** API token with Queues read + write (acks write queue state). */
  apiToken: string;
  /** The edge origin the signed callbacks go to. */
  edgeUrl: string;
  workerId: string;
  /** Most jobs held at once (default: the micro-batch size). */
  maxInFlight: number;
  visibilityTimeoutMs: number;
  heartbeatMs: number;
  idleMs: number;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is required when CONTOUR_MODE=pull`);
  return value;
}

function loadPullConfig(env: NodeJS.ProcessEnv, maxBatch: number): PullConfig | undefined {
  const mode = env['CONTOUR_MODE'] || 'push';
  if (mode !== 'push' && mode !== 'pull')
    throw new ConfigError(`CONTOUR_MODE must be push or pull, got "${mode}"`);
  if (mode === 'push') return undefined;
  const visibilityTimeoutMs = integer(env, 'CONTOUR_PULL_VISIBILITY_MS', 12 * 60_000, 1000);
  if (visibilityTimeoutMs > 12 * 60 * 60_000) {
    throw new ConfigError('CONTOUR_PULL_VISIBILITY_MS is at most 12 hours (the Queues limit)');
  }
  return {
    apiBaseUrl: env['CLOUDFLARE_API_BASE_URL'] || 'https://api.cloudflare.com/client/v4',
    accountId: required(env, 'CLOUDFLARE_ACCOUNT_ID'),
    queueId: required(env, 'CONTOUR_PULL_QUEUE_ID'),
    apiToken: required(env, 'CLOUDFLARE_QUEUES_TOKEN'),
    edgeUrl: required(env, 'CONTOUR_EDGE_URL'),
    workerId: env['CONTOUR_WORKER_ID'] || env['HOSTNAME'] || `worker-${process.pid}`,
    maxInFlight: integer(env, 'CONTOUR_PULL_MAX_IN_FLIGHT', maxBatch, 1),
    visibilityTimeoutMs,
    heartbeatMs: integer(env, 'CONTOUR_PULL_HEARTBEAT_MS', 10_000, 200),
    idleMs: integer(env, 'CONTOUR_PULL_IDLE_MS', 1000, 10),
  };
}

/** The development secret, refused in production. */
export const DEV_SIGNING_SECRET = 'local-dev-worker-secret';

/** Raised for an environment the worker cannot start with. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'worker_config_invalid';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function parseHeads(raw: string | undefined): ControlType[] | undefined {
  if (!raw) return undefined;
  return raw.split(',').map((name) => {
    const parsed = ControlTypeSchema.safeParse(name.trim());
    if (!parsed.success) throw new ConfigError(`CONTOUR_BUILTIN_HEADS: unknown control type "${name}"`);
    return parsed.data;
  });
}

function parseBuiltinModel(raw: string | undefined): BuiltinModelName {
  if (!raw) return 'circles';
  const model = builtinModelNamed(raw.trim());
  if (!model) {
    throw new ConfigError(`CONTOUR_BUILTIN_MODEL must be one of ${BUILTIN_MODELS.join(', ')}, got "${raw}"`);
  }
  return model;
}

/** Reads {@link ServiceConfig} from environment variables (see gpu-worker/README.md for the list). */
export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const production = env['NODE_ENV'] === 'production';
  const secrets = (env['WORKER_SIGNING_SECRET'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (secrets.length === 0) {
    if (production) throw new ConfigError('WORKER_SIGNING_SECRET is required when NODE_ENV=production');
    secrets.push(DEV_SIGNING_SECRET);
  } else if (production && secrets.includes(DEV_SIGNING_SECRET)) {
    throw new ConfigError('the development signing secret must not be used when NODE_ENV=production');
  }
  return {
    port: integer(env, 'PORT', 8790, 0),
    host: env['HOST'] || '0.0.0.0',
    signingSecrets: secrets,
    modelConfigPath: env['CONTOUR_MODEL_CONFIG'] || undefined,
    builtinHeads: parseHeads(env['CONTOUR_BUILTIN_HEADS']),
    builtinModel: parseBuiltinModel(env['CONTOUR_BUILTIN_MODEL']),
    queueSize: integer(env, 'CONTOUR_QUEUE_SIZE', 16, 0),
    maxBatch: integer(env, 'CONTOUR_MAX_BATCH', 4, 1),
    maxBatchPixels: env['CONTOUR_MAX_BATCH_PIXELS']
      ? integer(env, 'CONTOUR_MAX_BATCH_PIXELS', 0, 1)
      : undefined,
    maxBatchImages: integer(env, 'CONTOUR_MAX_BATCH_IMAGES', 8, 1),
    batchWindowMs: integer(env, 'CONTOUR_BATCH_WINDOW_MS', 0, 0),
    replayWindowS: integer(env, 'CONTOUR_REPLAY_WINDOW_S', 300, 1),
    clockSkewS: integer(env, 'CONTOUR_CLOCK_SKEW_S', 30, 0),
    shutdownGraceMs: integer(env, 'CONTOUR_SHUTDOWN_GRACE_MS', 30_000, 0),
    imageFetchTimeoutMs: integer(env, 'CONTOUR_IMAGE_FETCH_TIMEOUT_MS', 15_000, 1),
    maxImageBytes: integer(env, 'CONTOUR_MAX_IMAGE_BYTES', 25 * 1024 * 1024, 1),
    annotatorDir:
      env['CONTOUR_ANNOTATOR_DIR'] ||
      (env['CONTOUR_MODEL_CONFIG'] ? join(dirname(env['CONTOUR_MODEL_CONFIG']), 'annotators') : undefined),
    preprocessorBudgetBytes: env['CONTOUR_PREPROCESSOR_MEMORY_MB']
      ? integer(env, 'CONTOUR_PREPROCESSOR_MEMORY_MB', 0, 0) * 1024 * 1024
      : undefined,
    pull: loadPullConfig(env, integer(env, 'CONTOUR_MAX_BATCH', 4, 1)),
  };
}
