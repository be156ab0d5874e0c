import { z } from 'zod';
import { ApiErrorBodySchema } from './errors.ts';
import { GenerationIdSchema, GenerationSchema } from './generation.ts';

const base = {
  generation_id: GenerationIdSchema,
  sequence: z.int().min(0).describe('Monotonic per generation; SSE `id`, so clients can resume.'),
  created_at: z.iso.datetime(),
};

/**
 * Events of one generation, sent over SSE (`event:` = `type`) and, for terminal ones, to webhooks.
 */
export const GenerationEventSchema = z
  .discriminatedUnion('type', [
    z.object({ ...base, type: z.literal('generation.queued') }),
    z.object({ ...base, type: z.literal('generation.started') }),
    z.object({
      ...base,
      type: z.literal('generation.progress'),
      step: z.int().min(0),
      total: z.int().min(1),
    }),
    z.object({ ...base, type: z.literal('generation.succeeded'), generation: GenerationSchema }),
    z.object({
      ...base,
      type: z.literal('generation.failed'),
      error: ApiErrorBodySchema,
      generation: GenerationSchema,
    }),
    z.object({ ...base, type: z.literal('generation.canceled'), generation: GenerationSchema }),
  ])
  .meta({ id: 'GenerationEvent' });
export type GenerationEvent = z.infer<typeof GenerationEventSchema>;
/** The event names, for SSE `event:` lines and webhook filters. */
export type GenerationEventType = GenerationEvent['type'];
/** Events after which nothing else is sent. */
export const TERMINAL_EVENT_TYPES: readonly GenerationEventType[] = [
  'generation.succeeded',
  'generation.failed',
  'generation.canceled',
];
