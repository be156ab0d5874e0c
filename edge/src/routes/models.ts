import {
  CONTROL_TYPE_INFO,
  CONTROL_TYPE_PREPROCESSORS,
  CONTROL_TYPES,
  type ControlType,
  type ModelList,
  type PoolModel,
  PoolModelSchema,
  PREPROCESSORS,
} from '@contour/shared/contracts';
import { Hono } from 'hono';
import { parseWorkerPool } from '../dispatch/pool.ts';
import type { AppEnv, Bindings } from '../env.ts';
import { BASE_MODEL } from './generations/create.ts';

/** How long what the pool serves is cached per isolate. */
export const MODELS_CACHE_MS = 30_000;

/** What the pool's workers serve: control types and the base models they run. */
interface PoolState {
  types: Set<ControlType>;
  models: Map<string, PoolModel>;
  /** Network preprocessors some worker has the weights of. */
  preprocessors: Set<string>;
}

let cache: { at: number; state: PoolState } | undefined;

/** Asks each worker's `/v1/models` (cached): the control types some worker serves, and their base models. */
async function poolState(env: Bindings): Promise<PoolState> {
  if (cache && Date.now() - cache.at < MODELS_CACHE_MS) return cache.state;
  const state: PoolState = { types: new Set(), models: new Map(), preprocessors: new Set() };
  await Promise.all(
    parseWorkerPool(env.GPU_WORKERS).map(async (url) => {
      try {
        const response = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(2000) });
        if (!response.ok) return;
        const body = (await response.json()) as {
          control_types?: unknown;
          base?: unknown;
          preprocessors?: unknown;
        };
        if (!Array.isArray(body.control_types)) return;
        if (Array.isArray(body.preprocessors)) {
          for (const p of body.preprocessors as { name?: unknown; available?: unknown }[])
            if (p?.available === true && typeof p.name === 'string') state.preprocessors.add(p.name);
        }
        for (const t of body.control_types) if (CONTROL_TYPES.includes(t)) state.types.add(t);
        // Older workers send no base description; a malformed one is left out rather than failing the list.
        const base = PoolModelSchema.safeParse(body.base);
        if (base.success) state.models.set(base.data.name, base.data);
      } catch {
        // An unreachable worker serves nothing right now.
      }
    }),
  );
  cache = { at: Date.now(), state };
  return state;
}

/** `GET /v1/models`: every control type, whether the pool serves it and how it is preprocessed; the pool's bases. */
export const modelsRoute = new Hono<AppEnv>().get('/v1/models', async (c) => {
  const { types, models, preprocessors } = await poolState(c.env);
  const list: ModelList = {
    base_model: BASE_MODEL,
    data: CONTROL_TYPES.map((type) => ({
      type,
      description: CONTROL_TYPE_INFO[type].description,
      served: types.has(type),
      preprocessor: CONTROL_TYPE_INFO[type].preprocessor,
      preprocess_default: CONTROL_TYPE_INFO[type].preprocessByDefault,
      preprocessors: CONTROL_TYPE_PREPROCESSORS[type].map((name) => ({
        name,
        description: PREPROCESSORS[name].description,
        stage: PREPROCESSORS[name].stage,
        available: PREPROCESSORS[name].stage === 'edge' || preprocessors.has(name),
      })),
    })),
    pool: [...models.values()],
  };
  return c.json(list);
});
