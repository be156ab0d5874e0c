import { GenerationIdSchema } from '@contour/shared/contracts';
import type { Bindings } from '../env.ts';
import { ApiError } from '../lib/errors.ts';

/** The Durable Object of one generation (ids are validated first so junk never creates an object). */
export function generationStub(env: Pick<Bindings, 'GENERATIONS'>, id: string) {
  if (!GenerationIdSchema.safeParse(id).success) throw new ApiError('not_found', `No generation ${id}`);
  return env.GENERATIONS.get(env.GENERATIONS.idFromName(id));
}
