import { z } from 'zod';
import { ControlTypeSchema } from './controls.ts';
import { ErrorCodeSchema } from './errors.ts';
import { GenerationIdSchema } from './generation.ts';
import { checkSchedulerSteps, MAX_SEED, OutputFormatSchema, SchedulerSchema } from './generation-request.ts';
import { PoseKeypointsSchema } from './preprocess.ts';
import { PreprocessorNameSchema } from './preprocessors.ts';

/**
 * Internal contracts between the edge and the GPU worker pool. They travel in Cloudflare Queue
 * messages (128 KB max) and signed HTTP requests, so images are referenced, never inlined.
 */

/** Version of the job contract; a worker refuses versions it does not know. */
export const JOB_CONTRACT_VERSION = 1;

/** An image stored by the edge (R2 key), with a URL the worker can fetch it from. */
export const ImageRefSchema = z
  .object({
    key: z.string().min(1).max(512),
    url: z.url().describe('Fetchable by the worker (signed or edge-served).'),
    width: z.int().min(1),
    height: z.int().min(1),
    content_type: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .meta({ id: 'ImageRef' });
export type ImageRef = z.infer<typeof ImageRefSchema>;

/** One control unit, resolved: the map (or the image still to preprocess) and its schedule. */
export const JobControlSchema = z
  .object({
    type: ControlTypeSchema,
    image: ImageRefSchema,
    source: ImageRefSchema.optional().describe(
      'The original input when `image` is a control map the edge already made (for backends that preprocess themselves).',
    ),
    mask: ImageRefSchema.optional(),
    preprocess: z.boolean().describe('True when the worker must still run the preprocessor.'),
    preprocessor: PreprocessorNameSchema.optional().describe(
      "Which preprocessor (default: the type's); network ones need the worker's annotator weights.",
    ),
    params: z
      .record(z.string(), z.number())
      .describe(
        "The unit's params, validated at the edge (pixel_perfect already resolved into detect_resolution).",
      ),
    strength: z.number().min(0).max(2),
    start: z.number().min(0).max(1),
    end: z.number().min(0).max(1),
  })
  .meta({ id: 'JobControl' });
export type JobControl = z.infer<typeof JobControlSchema>;

/** Edge -> worker: everything needed to run one generation, with every default already resolved. */
export const WorkerJobSchema = z
  .object({
    version: z.literal(JOB_CONTRACT_VERSION),
    job_id: z.string().min(1).max(128),
    generation_id: GenerationIdSchema,
    attempt: z.int().min(1),
    base_model: z.string().min(1),
    prompt: z.string().describe('Composed prompt (prompt + added prompt).'),
    negative_prompt: z.string(),
    width: z.int().min(64),
    height: z.int().min(64),
    steps: z.int().min(1).max(100),
    guidance_scale: z.number().min(0).max(30),
    eta: z.number().min(0).max(1),
    seed: z.int().min(0).max(MAX_SEED),
    num_images: z.int().min(1).max(4),
    guess_mode: z.boolean(),
    scheduler: SchedulerSchema,
    output_format: OutputFormatSchema,
    controls: z.array(JobControlSchema).min(1).max(4),
    init_image: ImageRefSchema.optional().describe('img2img / inpaint: the image to start from.'),
    strength: z.number().gt(0).max(1).optional().describe('Resolved strength; set with init_image.'),
    mask: ImageRefSchema.optional().describe('Inpaint mask (white = repaint); set with init_image.'),
    mask_blur: z.number().min(0).max(64).optional().describe('Resolved mask blur sigma; set with mask.'),
    deadline_at: z.int().describe('Epoch ms after which the worker abandons the job.'),
    callback_url: z.url().optional().describe('Where the worker POSTs signed progress/result messages.'),
  })
  .superRefine(checkSchedulerSteps)
  .meta({ id: 'WorkerJob' });
export type WorkerJob = z.infer<typeof WorkerJobSchema>;

/** Timings of one job by stage, in milliseconds. */
export const StageTimingsSchema = z.record(z.string(), z.number().min(0));

/** Worker -> edge: progress, the result, or a failure. */
export const WorkerMessageSchema = z
  .discriminatedUnion('type', [
    z.object({
      type: z.literal('progress'),
      job_id: z.string(),
      step: z.int().min(0),
      total: z.int().min(1),
    }),
    z.object({
      type: z.literal('result'),
      job_id: z.string(),
      images: z.array(
        z.object({
          index: z.int().min(0),
          content_type: z.string(),
          data_base64: z.string(),
          width: z.int(),
          height: z.int(),
        }),
      ),
      control_maps: z.array(
        z.object({ index: z.int().min(0), content_type: z.string(), data_base64: z.string() }),
      ),
      steps: z.int().min(1).describe('Steps actually run per image.'),
      timings_ms: StageTimingsSchema,
      backend: z.string(),
      model: z.object({ base: z.string(), heads: z.array(z.string()), builtin: z.boolean() }),
    }),
    z.object({
      type: z.literal('error'),
      job_id: z.string(),
      code: ErrorCodeSchema,
      message: z.string(),
      retryable: z.boolean(),
    }),
  ])
  .meta({ id: 'WorkerMessage' });
export type WorkerMessage = z.infer<typeof WorkerMessageSchema>;

/** Edge -> worker `POST /v1/preprocess` (signed like jobs): run one network preprocessor, return the map. */
export const WorkerPreprocessRequestSchema = z
  .object({
    version: z.literal(JOB_CONTRACT_VERSION),
    preprocessor: PreprocessorNameSchema,
    image: ImageRefSchema,
    params: z.record(z.string(), z.number()),
    width: z.int().min(64).describe('Size of the returned map (the generation size it is made for).'),
    height: z.int().min(64),
  })
  .meta({ id: 'WorkerPreprocessRequest' });
export type WorkerPreprocessRequest = z.infer<typeof WorkerPreprocessRequestSchema>;

/** Worker -> edge: the map as PNG, the keypoints for openpose*, and timings. */
export const WorkerPreprocessResultSchema = z
  .object({
    preprocessor: PreprocessorNameSchema,
    width: z.int(),
    height: z.int(),
    content_type: z.literal('image/png'),
    data_base64: z.string(),
    keypoints: PoseKeypointsSchema.optional(),
    timings_ms: StageTimingsSchema,
  })
  .meta({ id: 'WorkerPreprocessResult' });
export type WorkerPreprocessResult = z.infer<typeof WorkerPreprocessResultSchema>;
