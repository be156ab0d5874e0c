import { z } from 'zod';

/** What an API key may do. Client tokens get `generations:read` and `generations:write` only. */
export const API_KEY_SCOPES = [
  'generations:read',
  'generations:write',
  'billing:read',
  'webhooks:manage',
  'client_tokens:create',
] as const;

/** One API key scope. */
export const ApiKeyScopeSchema = z.enum(API_KEY_SCOPES).meta({ id: 'ApiKeyScope' });
export type ApiKeyScope = z.infer<typeof ApiKeyScopeSchema>;

/** Account ids: `acct_` then url-safe characters. */
export const AccountIdSchema = z
  .string()
  .regex(/^acct_[A-Za-z0-9_]{3,64}$/, 'not an account id')
  .meta({ id: 'AccountId' });

/** An API key as listed: only the visible prefix, never the secret. */
export const ApiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal('api_key'),
    account_id: AccountIdSchema,
    name: z.string(),
    prefix: z.string().describe('The first characters of the key, to recognise it.'),
    scopes: z.array(ApiKeyScopeSchema),
    created_at: z.iso.datetime(),
    last_used_at: z.iso.datetime().nullable(),
    revoked_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'ApiKey' });
export type ApiKey = z.infer<typeof ApiKeySchema>;

/** A freshly issued key: the only time `secret` is shown. */
export const IssuedApiKeySchema = ApiKeySchema.extend({
  secret: z.string().describe('`sk_...`; store it now, it is never shown again.'),
}).meta({ id: 'IssuedApiKey' });
export type IssuedApiKey = z.infer<typeof IssuedApiKeySchema>;

/** Admin: create an account (optionally with opening credits and a first key). */
export const CreateAccountRequestSchema = z
  .object({
    name: z.string().min(1).max(200),
    credits: z.int().min(0).max(1_000_000_000).default(0),
    scopes: z.array(ApiKeyScopeSchema).min(1).optional(),
    rate_limit: z
      .object({ limit: z.int().min(1).max(100_000), period_s: z.int().min(1).max(3600) })
      .optional()
      .describe('Per-key and per-account request limit; absent = the platform default.'),
  })
  .meta({ id: 'CreateAccountRequest' });
export type CreateAccountRequest = z.infer<typeof CreateAccountRequestSchema>;

/** Admin: issue another key for an account. */
export const IssueKeyRequestSchema = z
  .object({
    name: z.string().max(200).default(''),
    scopes: z.array(ApiKeyScopeSchema).min(1).optional(),
  })
  .meta({ id: 'IssueKeyRequest' });

/** Admin: grant (positive) or adjust (either sign) credits. */
export const GrantCreditsRequestSchema = z
  .object({
    amount: z
      .int()
      .min(-1_000_000_000)
      .max(1_000_000_000)
      .refine((n) => n !== 0, 'must not be 0'),
    kind: z.enum(['grant', 'adjust']).default('grant'),
    memo: z.string().max(500).default(''),
  })
  .refine((r) => r.kind === 'adjust' || r.amount > 0, { path: ['amount'], message: 'grants are positive' })
  .meta({ id: 'GrantCreditsRequest' });

/** The account as its owner sees it. */
export const AccountSchema = z
  .object({
    id: AccountIdSchema,
    object: z.literal('account'),
    name: z.string(),
    created_at: z.iso.datetime(),
    webhook_secret: z.string().describe('`whsec_...`: signs webhooks sent to per-request `webhook` URLs.'),
  })
  .meta({ id: 'Account' });
export type Account = z.infer<typeof AccountSchema>;

/** Longest client-token origin (a host name is at most 253 characters). */
export const MAX_ORIGIN_CHARS = 300;
/** Most unexpired client tokens an account may hold at once. */
export const MAX_ACTIVE_CLIENT_TOKENS = 1000;

/** `POST /v1/client-tokens`: a short-lived token for a browser app, minted by the app's server. */
export const ClientTokenRequestSchema = z
  .object({
    origin: z
      .string()
      .max(MAX_ORIGIN_CHARS)
      .regex(/^https?:\/\/[^/\s]+$/, 'an origin: scheme://host[:port], no path')
      .describe('The only `Origin` the token is accepted from.'),
    expires_in: z
      .int()
      .min(10)
      .max(24 * 3600)
      .default(900)
      .describe('Lifetime in seconds.'),
    max_spend: z.int().min(1).max(1_000_000_000).describe('Credits the token may reserve in total.'),
    max_generations: z.int().min(1).max(100_000).default(100),
  })
  .meta({ id: 'ClientTokenRequest' });
export type ClientTokenRequest = z.infer<typeof ClientTokenRequestSchema>;

/** A minted client token. */
export const ClientTokenSchema = z
  .object({
    id: z.string(),
    object: z.literal('client_token'),
    token: z.string().describe('`ct_...`: send as `Authorization: Bearer` from the allowed origin.'),
    origin: z.string(),
    expires_at: z.iso.datetime(),
    max_spend: z.int(),
    max_generations: z.int(),
  })
  .meta({ id: 'ClientToken' });
export type ClientToken = z.infer<typeof ClientTokenSchema>;

/** Admin: `POST /v1/admin/bootstrap` prepares the local stack's dev account (idempotent). */
export const BootstrapRequestSchema = z
  .object({
    api_key: z
      .string()
      .regex(/^sk_[A-Za-z0-9_]{16,128}$/, 'sk_ then 16..128 letters, digits or _')
      .optional()
      .describe('Register this key (e.g. a fixed local one); without it a new key is issued on every call.'),
    credits: z.int().min(0).max(1_000_000_000).optional().describe('Opening credits, granted once.'),
  })
  .meta({ id: 'BootstrapRequest' });
