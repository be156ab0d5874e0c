import { z } from 'zod';
import { CONTROL_TYPE_INFO, CONTROL_TYPES, type ControlType, controlParamsSchema } from './controls.ts';
import {
  DEFAULT_ADDED_PROMPT,
  DEFAULT_CONTROL_STRENGTH,
  DEFAULT_ETA,
  DEFAULT_GUIDANCE_SCALE,
  DEFAULT_NEGATIVE_PROMPT,
  DEFAULT_STEPS,
} from './defaults.ts';
import { checkImageModes, imageModeFields } from './image-modes.ts';
import { ImageSourceSchema } from './image-source.ts';
import {
  CONTROL_TYPE_PREPROCESSORS,
  defaultPreprocessor,
  type PreprocessorName,
  parsePreprocessorParams,
} from './preprocessors.ts';
import {
  DEFAULT_IMAGE_RESOLUTION,
  formatSize,
  MAX_SIDE,
  MIN_SIDE,
  nearestValidSizes,
  SIDE_MULTIPLE,
  sizeProblem,
} from './sizes.ts';

/** Most control units one request may stack (their residuals are summed); more is a 422, never a silent cap. */
export const MAX_CONTROL_UNITS = 4;
/** Most images one request may generate. */
export const MAX_NUM_IMAGES = 4;
/** Longest prompt in characters (CLIP sees at most 75 tokens of it unless chunking is on). */
export const MAX_PROMPT_CHARS = 2000;
/** Largest seed (seeds are uint32). */
export const MAX_SEED = 0xffff_ffff;

/**
 * Samplers the API offers: `ddim` as the original ControlNet code; the others as their diffusers schedulers
 * with SD1.5's scheduler config (UniPC bh2, DPM++ 2M with and without Karras sigmas, Euler ancestral, LCM for
 * LCM-distilled weights). Every one bills per step, so a sampler that needs fewer steps costs less.
 */
export const SCHEDULERS = ['ddim', 'unipc', 'dpmpp_2m', 'dpmpp_2m_karras', 'euler_a', 'lcm'] as const;
/** One sampler name. */
export type Scheduler = (typeof SCHEDULERS)[number];
/** The most steps `lcm` runs (LCMScheduler's original_inference_steps). */
export const MAX_LCM_STEPS = 50;
/** Adds an issue on `steps` when the scheduler cannot run that many (lcm: at most {@link MAX_LCM_STEPS}). */
export function checkSchedulerSteps(
  value: { scheduler: Scheduler; steps: number },
  ctx: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  if (value.scheduler === 'lcm' && value.steps > MAX_LCM_STEPS) {
    ctx.addIssue({
      code: 'custom',
      path: ['steps'],
      message: `scheduler lcm runs at most ${MAX_LCM_STEPS} steps`,
    });
  }
}
export const SchedulerSchema = z.enum(SCHEDULERS).meta({
  id: 'Scheduler',
  description:
    'Sampler: ddim (the original, default), unipc, dpmpp_2m, dpmpp_2m_karras, euler_a (stochastic, seeded), ' +
    `lcm (for LCM-distilled weights; at most ${MAX_LCM_STEPS} steps). UniPC and DPM++ 2M reach DDIM-20 quality in fewer steps.`,
});
/** Encodings for output images. */
export const OutputFormatSchema = z.enum(['png', 'jpeg', 'webp']).meta({ id: 'OutputFormat' });
/** One output image encoding. */
export type OutputFormat = z.infer<typeof OutputFormatSchema>;

/** The `preprocessor` field of a unit of `type`: one of the preprocessors made for its head. */
function preprocessorField(type: ControlType) {
  const allowed = CONTROL_TYPE_PREPROCESSORS[type];
  if (allowed.length === 0) return {};
  return {
    preprocessor: z
      .enum(allowed as [PreprocessorName, ...PreprocessorName[]])
      .optional()
      .describe(`Which preprocessor makes the map when preprocess is true (default ${allowed[0]}).`),
  };
}

function controlUnitVariant<T extends ControlType>(type: T) {
  return z
    .object({
      type: z.literal(type),
      ...preprocessorField(type),
      pixel_perfect: z
        .boolean()
        .default(false)
        .describe(
          'Pick detect_resolution so the map needs no rescale to the output size (A1111 pixel perfect).',
        ),
      image: ImageSourceSchema.describe('The input image (or control map when preprocess is false).'),
      ...(type === 'inpaint'
        ? { mask: ImageSourceSchema.describe('Mask: white (or opaque alpha) marks pixels to repaint.') }
        : {}),
      preprocess: z
        .boolean()
        .default(CONTROL_TYPE_INFO[type].preprocessByDefault)
        .describe('Run the preprocessor on `image`; false when `image` already is the control map.'),
      params: controlParamsSchema(type),
      strength: z.number().min(0).max(2).default(DEFAULT_CONTROL_STRENGTH).describe('Control scale.'),
      start: z.number().min(0).max(1).default(0).describe('Fraction of steps before the control starts.'),
      end: z.number().min(0).max(1).default(1).describe('Fraction of steps after which the control stops.'),
    })
    .strict();
}

/** One ControlNet unit: a control type, its image and how strongly and when it steers. */
export const ControlUnitSchema = z
  .discriminatedUnion(
    'type',
    CONTROL_TYPES.map((type) => controlUnitVariant(type)) as unknown as [
      ReturnType<typeof controlUnitVariant<ControlType>>,
      ...ReturnType<typeof controlUnitVariant<ControlType>>[],
    ],
  )
  .refine((unit) => unit.start < unit.end, { path: ['end'], message: 'end must be greater than start' })
  .transform((unit, ctx) => {
    // The named (or default) preprocessor's own params schema: its defaults, its bounds, no foreign keys.
    const named = (unit as { preprocessor?: PreprocessorName }).preprocessor;
    const preprocessor = named ?? defaultPreprocessor(unit.type) ?? null;
    if (!preprocessor) return { ...unit, preprocessor: null, params: {} as Record<string, number> };
    const checked = parsePreprocessorParams(preprocessor, unit.params);
    if (!checked.ok) {
      for (const issue of checked.issues)
        ctx.issues.push({
          code: 'custom',
          path: ['params', ...issue.path],
          message: issue.message,
          input: unit,
        });
      return z.NEVER;
    }
    return { ...unit, preprocessor, params: checked.params };
  })
  .meta({ id: 'ControlUnit' });
export type ControlUnit = z.infer<typeof ControlUnitSchema>;
export type ControlUnitInput = z.input<typeof ControlUnitSchema>;

const sideSchema = z
  .int()
  .describe(
    `Multiple of ${SIDE_MULTIPLE}, ${MIN_SIDE}..${MAX_SIDE}; derived from the first control image when absent.`,
  );

/** The public v1 request to generate images. */
export const GenerationRequestSchema = z
  .object({
    prompt: z.string().trim().min(1, 'prompt must not be empty').max(MAX_PROMPT_CHARS),
    negative_prompt: z.string().max(MAX_PROMPT_CHARS).default(DEFAULT_NEGATIVE_PROMPT),
    added_prompt: z
      .string()
      .max(MAX_PROMPT_CHARS)
      .default(DEFAULT_ADDED_PROMPT)
      .describe('Appended as `prompt, added_prompt` like the original apps; "" to disable.'),
    controls: z
      .array(ControlUnitSchema)
      .min(1, 'at least one control unit is required')
      .max(MAX_CONTROL_UNITS, `at most ${MAX_CONTROL_UNITS} control units are supported`),
    width: sideSchema.optional(),
    height: sideSchema.optional(),
    image_resolution: z
      .int()
      .min(MIN_SIDE)
      .max(MAX_SIDE)
      .multipleOf(SIDE_MULTIPLE)
      .default(DEFAULT_IMAGE_RESOLUTION)
      .describe('Short side of the derived size when width/height are absent.'),
    steps: z.int().min(1).max(100).default(DEFAULT_STEPS),
    guidance_scale: z.number().min(0).max(30).default(DEFAULT_GUIDANCE_SCALE),
    eta: z.number().min(0).max(1).default(DEFAULT_ETA),
    seed: z.int().min(0).max(MAX_SEED).optional().describe('uint32; random when absent, always echoed back.'),
    num_images: z.int().min(1).max(MAX_NUM_IMAGES).default(1),
    guess_mode: z.boolean().default(false),
    scheduler: SchedulerSchema.default('ddim'),
    output_format: OutputFormatSchema.default('png'),
    ...imageModeFields,
    webhook: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional()
      .describe('Receives the terminal event, signed Standard-Webhooks style.'),
    metadata: z
      .record(z.string().min(1).max(40), z.string().max(500))
      .refine((m) => Object.keys(m).length <= 16, 'at most 16 metadata keys')
      .optional(),
  })
  .strict()
  .superRefine((request, ctx) => {
    checkSchedulerSteps(request, ctx);
    checkImageModes(request, ctx);
    const { width, height } = request;
    if ((width === undefined) !== (height === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [width === undefined ? 'width' : 'height'],
        message: 'width and height must be given together (or both left out to derive them)',
      });
      return;
    }
    if (width === undefined || height === undefined) return;
    const problem = sizeProblem({ width, height });
    if (problem === null) return;
    const suggestions = nearestValidSizes({ width, height }).map(formatSize);
    const field = problem.startsWith('height') ? 'height' : 'width';
    ctx.addIssue({
      code: 'custom',
      path: [field],
      message: `${problem}; nearest valid sizes: ${suggestions.join(', ')}`,
      params: { suggestions },
    });
  })
  .meta({ id: 'GenerationRequest' });

/** A request after defaults are applied. */
export type GenerationRequest = z.infer<typeof GenerationRequestSchema>;
/** A request as clients may send it (defaults optional). */
export type GenerationRequestInput = z.input<typeof GenerationRequestSchema>;
