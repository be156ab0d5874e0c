import { z } from 'zod';
import { ControlTypeSchema } from './controls.ts';
import { PreprocessorNameSchema } from './preprocessors.ts';

/** One preprocessor a control type accepts, and whether the deployment can run it now. */
export const ModelPreprocessorSchema = z
  .object({
    name: PreprocessorNameSchema,
    description: z.string(),
    stage: z.enum(['edge', 'worker']),
    available: z
      .boolean()
      .describe('Edge ones always; network ones when a reachable worker has their weights installed.'),
  })
  .meta({ id: 'ModelPreprocessor' });

/** One control type as a deployment serves it (`GET /v1/models`). */
export const ModelEntrySchema = z
  .object({
    type: ControlTypeSchema,
    description: z.string(),
    served: z.boolean().describe('A worker has (or can load) this head.'),
    preprocessor: z.enum(['cheap', 'network', 'identity']),
    preprocess_default: z.boolean(),
    preprocessors: z.array(ModelPreprocessorSchema).describe('Its preprocessors, the default first.'),
  })
  .meta({ id: 'ModelEntry' });

/** A base model some worker of the pool runs, as that worker describes it. */
export const PoolModelSchema = z
  .object({
    name: z.string(),
    builtin: z.boolean().describe('The built-in model a worker runs without configured weights.'),
    native_resolution: z
      .number()
      .int()
      .nullable()
      .describe('The one resolution it samples at (requests are resized to and from it), or null.'),
    description: z.string().nullable(),
    suggested: z
      .object({ prompt: z.string(), steps: z.number().int(), guidance_scale: z.number() })
      .nullable()
      .describe('A request of the kind the model was made for (the built-in model).'),
  })
  .meta({ id: 'PoolModel' });
export type PoolModel = z.infer<typeof PoolModelSchema>;

/** `GET /v1/models`. */
export const ModelListSchema = z
  .object({
    base_model: z.string(),
    data: z.array(ModelEntrySchema),
    pool: z
      .array(PoolModelSchema)
      .describe('The base models the reachable workers run (one entry per distinct name).'),
  })
  .meta({ id: 'ModelList' });
export type ModelList = z.infer<typeof ModelListSchema>;
