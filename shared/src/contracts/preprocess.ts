import { z } from 'zod';
import { CONTROL_TYPES, type ControlType, ControlTypeSchema, controlParamsSchema } from './controls.ts';
import { ImageSourceSchema } from './image-source.ts';
import { DEFAULT_IMAGE_RESOLUTION, MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE } from './sizes.ts';

function preprocessVariant<T extends ControlType>(type: T) {
  return z
    .object({
      type: z.literal(type),
      image: ImageSourceSchema,
      params: controlParamsSchema(type),
      image_resolution: z
        .int()
        .min(MIN_SIDE)
        .max(MAX_SIDE)
        .multipleOf(SIDE_MULTIPLE)
        .default(DEFAULT_IMAGE_RESOLUTION),
    })
    .strict();
}

/** `POST /v1/preprocess`: make the control map only (like A1111's /controlnet/detect). */
export const PreprocessRequestSchema = z
  .discriminatedUnion(
    'type',
    CONTROL_TYPES.map((type) => preprocessVariant(type)) as unknown as [
      ReturnType<typeof preprocessVariant<ControlType>>,
      ...ReturnType<typeof preprocessVariant<ControlType>>[],
    ],
  )
  .meta({ id: 'PreprocessRequest' });
export type PreprocessRequest = z.infer<typeof PreprocessRequestSchema>;

/** The control map made by `POST /v1/preprocess`. */
export const PreprocessResultSchema = z
  .object({
    type: ControlTypeSchema,
    width: z.int(),
    height: z.int(),
    url: z.string().describe('Where the stored control map can be fetched.'),
    stage: z.enum(['edge', 'worker']).describe('Which tier ran the preprocessor.'),
  })
  .meta({ id: 'PreprocessResult' });
export type PreprocessResult = z.infer<typeof PreprocessResultSchema>;
