import { z } from 'zod';
import { ControlTypeSchema } from './controls.ts';

/** One control type as a deployment serves it (`GET /v1/models`). */
export const ModelEntrySchema = z
  .object({
    type: ControlTypeSchema,
    description: z.string(),
    served: z.boolean().describe('A worker has (or can load) this head.'),
    preprocessor: z.enum(['cheap', 'network', 'identity']),
    preprocess_default: z.boolean(),
  })
  .meta({ id: 'ModelEntry' });

/** `GET /v1/models`. */
export const ModelListSchema = z
  .object({ base_model: z.string(), data: z.array(ModelEntrySchema) })
  .meta({ id: 'ModelList' });
export type ModelList = z.infer<typeof ModelListSchema>;
