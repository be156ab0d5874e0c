import {
  CONTROL_TYPE_INFO,
  CONTROL_TYPES,
  type ControlType,
  type ModelList,
} from '@contour/shared/contracts';
import { Hono } from 'hono';
import { parseWorkerPool } from '../dispatch/pool.ts';
import type { AppEnv, Bindings } from '../env.ts';
import { BASE_MODEL } from './generations/create.ts';

/** How long the pool's served control types are cached per isolate. */
export const MODELS_CACHE_MS = 30_000;

let cache: { at: number; types: Set<ControlType> } | undefined;

/** Control types some worker of the pool serves (asked from each worker's `/v1/models`, cached). */
async function servedTypes(env: Bindings): Promise<Set<ControlType>> {
  if (cache && Date.now() - cache.at < MODELS_CACHE_MS) return cache.types;
  const types = new Set<ControlType>();
  await Promise.all(
    parseWorkerPool(env.GPU_WORKERS).map(async (url) => {
      try {
        const response = await fetch(`${url}/v1/models`, { signal: AbortSignal.timeout(2000) });
        if (!response.ok) return;
        const body = (await response.json()) as { control_types?: unknown };
        if (!Array.isArray(body.control_types)) return;
        for (const t of body.control_types) if (CONTROL_TYPES.includes(t)) types.add(t);
      } catch {
        // An unreachable worker serves nothing right now.
      }
    }),
  );
  cache = { at: Date.now(), types };
  return types;
}

/** `GET /v1/models`: every control type, whether the pool serves it, and how it is preprocessed. */
export const modelsRoute = new Hono<AppEnv>().get('/v1/models', async (c) => {
  const served = await servedTypes(c.env);
  const list: ModelList = {
    base_model: BASE_MODEL,
    data: CONTROL_TYPES.map((type) => ({
      type,
      description: CONTROL_TYPE_INFO[type].description,
      served: served.has(type),
      preprocessor: CONTROL_TYPE_INFO[type].preprocessor,
      preprocess_default: CONTROL_TYPE_INFO[type].preprocessByDefault,
    })),
  };
  return c.json(list);
});
