import { z } from 'zod';
import { CONTROL_TYPES, type ControlType, ControlTypeSchema } from './controls.ts';
import { ImageSourceSchema } from './image-source.ts';
import {
  defaultPreprocessor,
  mergedParamsSchema,
  PREPROCESSOR_NAMES,
  PREPROCESSORS,
  type PreprocessorName,
  PreprocessorNameSchema,
  parsePreprocessorParams,
} from './preprocessors.ts';
import { DEFAULT_IMAGE_RESOLUTION, MAX_SIDE, MIN_SIDE, SIDE_MULTIPLE } from './sizes.ts';

const anyParamsSchema = mergedParamsSchema(PREPROCESSOR_NAMES);

/**
 * `POST /v1/preprocess`: make the control map only (like A1111's /controlnet/detect). Name the `preprocessor`
 * (`depth_midas`, `openpose_full`...) or a control `type` (its default preprocessor). Network preprocessors run on
 * the GPU pool; the others at the edge.
 */
export const PreprocessRequestSchema = z
  .object({
    preprocessor: PreprocessorNameSchema.optional(),
    type: ControlTypeSchema.optional().describe(
      'A control type: its default preprocessor (when no preprocessor).',
    ),
    image: ImageSourceSchema,
    mask: ImageSourceSchema.optional().describe(
      'inpaint only: white (or opaque alpha) marks pixels to repaint.',
    ),
    params: anyParamsSchema.prefault({}),
    image_resolution: z
      .int()
      .min(MIN_SIDE)
      .max(MAX_SIDE)
      .multipleOf(SIDE_MULTIPLE)
      .default(DEFAULT_IMAGE_RESOLUTION)
      .describe('Short side of the returned map (the generation size it is made for).'),
    pixel_perfect: z
      .boolean()
      .default(false)
      .describe(
        'Pick detect_resolution so the map needs no rescale to image_resolution (A1111 pixel perfect).',
      ),
  })
  .strict()
  .transform((request, ctx) => {
    const preprocessor: PreprocessorName | undefined =
      request.preprocessor ?? (request.type ? defaultPreprocessor(request.type) : undefined);
    if (!preprocessor) {
      ctx.issues.push({
        code: 'custom',
        path: [request.type ? 'type' : 'preprocessor'],
        message: request.type
          ? `control type ${request.type} has no preprocessor (its control is the image itself)`
          : 'name a preprocessor (or a control type)',
        input: request,
      });
      return z.NEVER;
    }
    const type: ControlType = request.type ?? PREPROCESSORS[preprocessor].controlType;
    const checked = parsePreprocessorParams(preprocessor, request.params);
    if (!checked.ok) {
      for (const issue of checked.issues)
        ctx.issues.push({
          code: 'custom',
          path: ['params', ...issue.path],
          message: issue.message,
          input: request,
        });
      return z.NEVER;
    }
    if (preprocessor === 'inpaint' && !request.mask) {
      ctx.issues.push({ code: 'custom', path: ['mask'], message: 'inpaint needs a mask', input: request });
      return z.NEVER;
    }
    return { ...request, preprocessor, type, params: checked.params };
  })
  .meta({ id: 'PreprocessRequest' });
export type PreprocessRequest = z.infer<typeof PreprocessRequestSchema>;

/** OpenPose keypoints (OpenPose JSON: [x, y, confidence] triples in pixels of the returned map). */
export const PoseKeypointsSchema = z
  .object({
    canvas_width: z.int(),
    canvas_height: z.int(),
    people: z.array(
      z.object({
        pose_keypoints_2d: z.array(z.number()),
        face_keypoints_2d: z.array(z.number()).optional(),
        hand_left_keypoints_2d: z.array(z.number()).optional(),
        hand_right_keypoints_2d: z.array(z.number()).optional(),
      }),
    ),
  })
  .meta({ id: 'PoseKeypoints' });
export type PoseKeypoints = z.infer<typeof PoseKeypointsSchema>;

/** The control map made by `POST /v1/preprocess`. */
export const PreprocessResultSchema = z
  .object({
    type: ControlTypeSchema.describe('The control type (head) the map is made for.'),
    preprocessor: PreprocessorNameSchema,
    width: z.int(),
    height: z.int(),
    url: z.string().describe('Where the stored control map can be fetched.'),
    stage: z.enum(['edge', 'worker']).describe('Which tier ran the preprocessor.'),
    detect_resolution: z.int().optional().describe('Annotator resolution used (network preprocessors).'),
    keypoints: PoseKeypointsSchema.optional().describe('openpose*: the detected people.'),
  })
  .meta({ id: 'PreprocessResult' });
export type PreprocessResult = z.infer<typeof PreprocessResultSchema>;

/** Control types with at least one preprocessor. */
export const PREPROCESSABLE_TYPES = CONTROL_TYPES.filter((type) => defaultPreprocessor(type) !== undefined);
