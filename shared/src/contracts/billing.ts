import { z } from 'zod';

/** Kinds of credit ledger entries. Amounts are signed changes to the available balance. */
export const LedgerKindSchema = z
  .enum(['grant', 'reserve', 'capture', 'release', 'adjust'])
  .meta({ id: 'LedgerKind' });
export type LedgerKind = z.infer<typeof LedgerKindSchema>;

/** `GET /v1/balance`. `available == sum(ledger)`; `reserved` is held by unfinished generations. */
export const BalanceSchema = z
  .object({
    object: z.literal('balance'),
    available: z.int().describe('Credits that new generations can reserve (the ledger sum).'),
    reserved: z.int().min(0).describe('Credits held by generations that have not finished.'),
    unit: z.literal('credits'),
  })
  .meta({ id: 'Balance' });
export type Balance = z.infer<typeof BalanceSchema>;

/** One captured (charged) generation. */
export const UsageRecordSchema = z
  .object({
    generation_id: z.string(),
    credits: z.int(),
    steps: z.int(),
    width: z.int(),
    height: z.int(),
    num_images: z.int(),
    control_units: z.int(),
    key_id: z.string().nullable(),
    created_at: z.iso.datetime(),
  })
  .meta({ id: 'UsageRecord' });
export type UsageRecord = z.infer<typeof UsageRecordSchema>;

/** `GET /v1/usage?from&to` (JSON; `format=csv` or `Accept: text/csv` gives CSV with the same columns). */
export const UsageReportSchema = z
  .object({
    object: z.literal('usage'),
    from: z.iso.datetime(),
    to: z.iso.datetime(),
    total_credits: z.int(),
    generations: z.int(),
    records: z.array(UsageRecordSchema),
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.infer<typeof UsageReportSchema>;

/** Query of `GET /v1/usage`: ISO datetimes or dates; `to` defaults to now, `from` to 30 days before. */
export const UsageQuerySchema = z.object({
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  format: z.enum(['json', 'csv']).optional(),
});

/** `GET /v1/pricing`: the published constants of `generationCost`. */
export const PricingSchema = z
  .object({
    object: z.literal('pricing'),
    unit: z.literal('credits'),
    formula: z.string(),
    credits_per_step_at_512: z.number(),
    extra_control_unit_factor: z.number(),
    min_credits: z.int(),
    examples: z.array(
      z.object({
        width: z.int(),
        height: z.int(),
        steps: z.int(),
        num_images: z.int(),
        control_units: z.int(),
        credits: z.int(),
      }),
    ),
  })
  .meta({ id: 'Pricing' });
export type Pricing = z.infer<typeof PricingSchema>;
