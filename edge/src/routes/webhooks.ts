import {
  CreateWebhookEndpointRequestSchema,
  MAX_WEBHOOK_ENDPOINTS,
  WebhookDeliveryListQuerySchema,
  type WebhookEndpoint,
} from '@contour/shared/contracts';
import { generateWebhookSecret } from '@contour/shared/webhooks';
import { Hono } from 'hono';
import { iso } from '../accounts/store.ts';
import { authOf } from '../auth/middleware.ts';
import { type AppEnv, isLocal } from '../env.ts';
import { randomId } from '../images/store.ts';
import { ApiError } from '../lib/errors.ts';
import { dohUrlOf, publicUrlProblem } from '../lib/public-url.ts';
import { parseJsonBody, parseOr422 } from '../lib/schema.ts';
import { type DeliveryRow, deliveryStub, toDelivery } from '../webhooks/object.ts';

/** `/v1/webhooks/*`: account endpoints, the delivery log, manual redelivery. */
export const webhooksRoute = new Hono<AppEnv>()
  .get('/v1/webhooks/deliveries', async (c) => {
    const { accountId } = authOf(c);
    const query = parseOr422(WebhookDeliveryListQuerySchema, c.req.query());
    const generation = query.generation_id;
    const status = query.status;
    const limit = query.limit ?? 50;
    const { results } = await c.env.DB.prepare(
      `SELECT * FROM webhook_deliveries WHERE account_id = ?1 AND (?2 IS NULL OR generation_id = ?2)
       AND (?3 IS NULL OR status = ?3) ORDER BY created_at DESC LIMIT ?4`,
    )
      .bind(accountId, generation ?? null, status ?? null, limit)
      .all<DeliveryRow>();
    return c.json({ object: 'list', data: results.map(toDelivery) });
  })
  .post('/v1/webhooks/deliveries/:id/redeliver', async (c) => {
    const { accountId } = authOf(c);
    const id = c.req.param('id');
    const row = await c.env.DB.prepare('SELECT * FROM webhook_deliveries WHERE id = ? AND account_id = ?')
      .bind(id, accountId)
      .first<DeliveryRow>();
    if (!row) throw new ApiError('not_found', `No webhook delivery ${id}`);
    await deliveryStub(c.env, id).redeliver();
    return c.json(toDelivery({ ...row, status: 'pending', next_attempt_at: Date.now() }), 202);
  })
  .post('/v1/webhooks/endpoints', async (c) => {
    const { accountId } = authOf(c);
    const body = await parseJsonBody(CreateWebhookEndpointRequestSchema, c.req.raw);
    const problem = await publicUrlProblem(new URL(body.url), {
      allowInsecure: isLocal(c.env),
      dohUrl: dohUrlOf(c.env),
    });
    if (problem)
      throw new ApiError('validation_failed', `url: ${problem}`, [{ path: 'url', message: problem }]);
    const active = await c.env.DB.prepare(
      'SELECT COUNT(*) AS n FROM webhook_endpoints WHERE account_id = ? AND disabled_at IS NULL',
    )
      .bind(accountId)
      .first<{ n: number }>();
    if ((active?.n ?? 0) >= MAX_WEBHOOK_ENDPOINTS) {
      throw new ApiError('conflict', `An account has at most ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints`, [
        { path: 'url', message: 'delete an endpoint first' },
      ]);
    }
    const endpoint = {
      id: `we_${randomId(20)}`,
      url: body.url,
      secret: generateWebhookSecret(),
      created_at: Date.now(),
    };
    await c.env.DB.prepare(
      'INSERT INTO webhook_endpoints (id, account_id, url, secret, created_at) VALUES (?, ?, ?, ?, ?)',
    )
      .bind(endpoint.id, accountId, endpoint.url, endpoint.secret, endpoint.created_at)
      .run();
    const view: WebhookEndpoint = {
      ...endpoint,
      object: 'webhook_endpoint',
      created_at: iso(endpoint.created_at),
    };
    return c.json(view, 201);
  })
  .get('/v1/webhooks/endpoints', async (c) => {
    const { accountId } = authOf(c);
    const { results } = await c.env.DB.prepare(
      'SELECT id, url, created_at FROM webhook_endpoints WHERE account_id = ? AND disabled_at IS NULL ORDER BY created_at',
    )
      .bind(accountId)
      .all<{ id: string; url: string; created_at: number }>();
    return c.json({
      object: 'list',
      data: results.map((r) => ({ ...r, object: 'webhook_endpoint', created_at: iso(r.created_at) })),
    });
  })
  .delete('/v1/webhooks/endpoints/:id', async (c) => {
    const { accountId } = authOf(c);
    const result = await c.env.DB.prepare(
      'UPDATE webhook_endpoints SET disabled_at = ? WHERE id = ? AND account_id = ? AND disabled_at IS NULL',
    )
      .bind(Date.now(), c.req.param('id'), accountId)
      .run();
    if (result.meta.changes === 0)
      throw new ApiError('not_found', `No webhook endpoint ${c.req.param('id')}`);
    return c.body(null, 204);
  });
