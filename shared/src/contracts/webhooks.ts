import { z } from 'zod';
import { queryIntSchema } from './errors.ts';

/** Event types sent to customer webhooks (a generation's terminal event). */
export const WebhookEventTypeSchema = z
  .enum(['generation.succeeded', 'generation.failed', 'generation.canceled'])
  .meta({ id: 'WebhookEventType' });
export type WebhookEventType = z.infer<typeof WebhookEventTypeSchema>;

/** The signed JSON body POSTed to a webhook (Standard Webhooks shape: type, timestamp, data). */
export const WebhookPayloadSchema = z
  .object({
    type: WebhookEventTypeSchema,
    timestamp: z.iso.datetime(),
    data: z.record(z.string(), z.unknown()).describe('The Generation resource.'),
  })
  .meta({ id: 'WebhookPayload' });
export type WebhookPayload = z.infer<typeof WebhookPayloadSchema>;

/** One delivery (a message to one URL, retried with backoff until accepted or exhausted). */
export const WebhookDeliverySchema = z
  .object({
    id: z.string().describe('The `webhook-id` the receiver sees (the same on every retry).'),
    object: z.literal('webhook_delivery'),
    generation_id: z.string(),
    event_type: WebhookEventTypeSchema,
    url: z.string(),
    endpoint_id: z.string().nullable(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.int().min(0),
    last_status_code: z.int().nullable(),
    last_error: z.string().nullable(),
    next_attempt_at: z.iso.datetime().nullable(),
    created_at: z.iso.datetime(),
    delivered_at: z.iso.datetime().nullable(),
  })
  .meta({ id: 'WebhookDelivery' });
export type WebhookDelivery = z.infer<typeof WebhookDeliverySchema>;

/** Most deliveries one listing returns. */
export const MAX_DELIVERIES_LISTED = 100;

/** Query of `GET /v1/webhooks/deliveries` (integers only: a `limit` of 1.5 or 1e400 is a 422, not SQL). */
export const WebhookDeliveryListQuerySchema = z
  .object({
    generation_id: z.string().max(80).optional(),
    status: z.enum(['pending', 'succeeded', 'failed']).optional(),
    limit: queryIntSchema(1, MAX_DELIVERIES_LISTED).optional(),
  })
  .meta({ id: 'WebhookDeliveryListQuery' });

/** `GET /v1/webhooks/deliveries`. */
export const WebhookDeliveryListSchema = z
  .object({ object: z.literal('list'), data: z.array(WebhookDeliverySchema) })
  .meta({ id: 'WebhookDeliveryList' });

/** An account-wide endpoint: gets the terminal events of generations created without a `webhook`. */
export const WebhookEndpointSchema = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    secret: z.string().optional().describe('`whsec_...`; returned only when the endpoint is created.'),
    created_at: z.iso.datetime(),
  })
  .meta({ id: 'WebhookEndpoint' });
export type WebhookEndpoint = z.infer<typeof WebhookEndpointSchema>;

/** Longest webhook URL (endpoints and per-request `webhook`). */
export const MAX_WEBHOOK_URL_CHARS = 2048;
/** Most active webhook endpoints per account (each terminal event goes to all of them). */
export const MAX_WEBHOOK_ENDPOINTS = 10;

/** `POST /v1/webhooks/endpoints`. */
export const CreateWebhookEndpointRequestSchema = z
  .object({ url: z.url({ protocol: /^https?$/ }).max(MAX_WEBHOOK_URL_CHARS) })
  .meta({ id: 'CreateWebhookEndpointRequest' });
