import { z } from 'zod';
import { ControlTypeSchema } from './controls.ts';
import { ApiErrorBodySchema, queryIntSchema } from './errors.ts';
import { MAX_SEED, OutputFormatSchema } from './generation-request.ts';

/** Generation ids: `gen_` then 8..64 url-safe characters. */
export const GenerationIdSchema = z
  .string()
  .regex(/^gen_[A-Za-z0-9]{8,64}$/, 'not a generation id')
  .meta({ id: 'GenerationId' });

/** Lifecycle: queued -> running -> succeeded | failed | canceled. */
export const GenerationStatusSchema = z
  .enum(['queued', 'running', 'succeeded', 'failed', 'canceled'])
  .meta({ id: 'GenerationStatus' });
export type GenerationStatus = z.infer<typeof GenerationStatusSchema>;

/** Statuses a generation never leaves. */
export const TERMINAL_STATUSES: readonly GenerationStatus[] = ['succeeded', 'failed', 'canceled'];

/** Steps done out of the total denoising steps (over all images). */
export const ProgressSchema = z
  .object({ step: z.int().min(0), total: z.int().min(0) })
  .refine((p) => p.step <= p.total, { path: ['step'], message: 'step must be <= total' })
  .meta({ id: 'Progress' });

/** One generated image. */
export const GenerationOutputSchema = z
  .object({
    index: z.int().min(0),
    url: z.string(),
    content_type: z.string(),
    width: z.int(),
    height: z.int(),
  })
  .meta({ id: 'GenerationOutput' });

/** The control map a unit actually used (after preprocessing), so clients can show it beside the result. */
export const ControlMapOutputSchema = z
  .object({
    index: z.int().min(0).describe('Index of the control unit in the request.'),
    type: ControlTypeSchema,
    url: z.string(),
  })
  .meta({ id: 'ControlMapOutput' });

/** What a generation costs, in credits. */
export const CostSchema = z
  .object({
    credits: z.int().min(0).describe('Charged (or, before completion, reserved) credits.'),
    captured: z.boolean().describe('True once charged; released holds are never charged.'),
  })
  .meta({ id: 'Cost' });

/** Something the API changed or noticed on the client's behalf (size fitted, prompt truncated...). */
export const WarningSchema = z
  .object({
    code: z.enum(['size_adjusted', 'prompt_truncated', 'control_resized']),
    message: z.string(),
    path: z.string().optional(),
  })
  .meta({ id: 'Warning' });
export type Warning = z.infer<typeof WarningSchema>;

/** The generation resource returned by `GET /v1/generations/:id`. */
export const GenerationSchema = z
  .object({
    id: GenerationIdSchema,
    object: z.literal('generation'),
    status: GenerationStatusSchema,
    progress: ProgressSchema,
    created_at: z.iso.datetime(),
    started_at: z.iso.datetime().nullable(),
    finished_at: z.iso.datetime().nullable(),
    seed: z.int().min(0).max(MAX_SEED),
    width: z.int(),
    height: z.int(),
    steps: z.int().describe('Denoising steps actually run per image.'),
    num_images: z.int(),
    output_format: OutputFormatSchema,
    outputs: z.array(GenerationOutputSchema),
    control_maps: z.array(ControlMapOutputSchema),
    cost: CostSchema,
    error: ApiErrorBodySchema.nullable(),
    warnings: z.array(WarningSchema),
    metadata: z.record(z.string(), z.string()),
    urls: z.object({ self: z.string(), events: z.string(), cancel: z.string() }),
  })
  .meta({ id: 'Generation' });
export type Generation = z.infer<typeof GenerationSchema>;

/** Page size of `GET /v1/generations` when `limit` is absent. */
export const DEFAULT_LIST_LIMIT = 20;
/** Largest page `GET /v1/generations` returns. */
export const MAX_LIST_LIMIT = 100;

/** Query of `GET /v1/generations`: `cursor` is the `next_cursor` of the previous page. */
export const GenerationListQuerySchema = z
  .object({
    limit: queryIntSchema(1, MAX_LIST_LIMIT).default(DEFAULT_LIST_LIMIT),
    cursor: GenerationIdSchema.optional(),
  })
  .meta({ id: 'GenerationListQuery' });

/** `GET /v1/generations`: one page of the caller's generations, newest first. */
export const GenerationListSchema = z
  .object({
    object: z.literal('list'),
    data: z.array(GenerationSchema),
    has_more: z.boolean(),
    next_cursor: GenerationIdSchema.nullable(),
  })
  .meta({ id: 'GenerationList' });
export type GenerationList = z.infer<typeof GenerationListSchema>;
