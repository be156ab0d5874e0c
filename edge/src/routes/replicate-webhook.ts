import { Hono } from 'hono';
import type { Prediction } from 'replicate';
import { predictionImages, verifyReplicateWebhook } from '../dispatch/replicate.ts';
import type { AppEnv, Bindings } from '../env.ts';
import type { StoredOutput } from '../generations/state.ts';
import { generationStub } from '../generations/stub.ts';
import { readLimited } from '../images/input.ts';
import { ApiError } from '../lib/errors.ts';

/** Time allowed to copy one output from Replicate's CDN. */
export const OUTPUT_COPY_TIMEOUT_MS = 30_000;

async function copyOutput(env: Bindings, url: string, key: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(OUTPUT_COPY_TIMEOUT_MS) });
  if (!response.ok) throw new Error(`output ${url} answered ${response.status}`);
  const contentType = response.headers.get('content-type') ?? 'image/png';
  const bytes = await readLimited(response, 'output');
  await env.IMAGES.put(key, bytes, { httpMetadata: { contentType } });
  return contentType;
}

/**
 * `POST /v1/webhooks/replicate?generation=gen_...`: Replicate's prediction callbacks. Verified with the
 * signing secret and a timestamp window, deduplicated by `webhook-id`; outputs are copied into R2
 * (Replicate deletes them after an hour) before the generation succeeds.
 */
export const replicateWebhookRoute = new Hono<AppEnv>().post('/v1/webhooks/replicate', async (c) => {
  const body = await c.req.text();
  const verdict = await verifyReplicateWebhook(c.req.raw.headers, body, c.env.REPLICATE_WEBHOOK_SECRET);
  if (!verdict.ok) throw new ApiError('unauthenticated', `Webhook refused: ${verdict.reason}`);
  const generationId = c.req.query('generation') ?? '';
  const stub = generationStub(c.env, generationId);
  const state = await stub.getState();
  if (!state?.replicate) throw new ApiError('not_found', `No Replicate generation ${generationId}`);
  if (!(await stub.recordWebhook(verdict.id))) return c.json({ received: true, duplicate: true });
  let prediction: Prediction;
  try {
    prediction = JSON.parse(body) as Prediction;
  } catch {
    throw new ApiError('invalid_json', 'Webhook body is not JSON');
  }
  if (prediction.id !== state.replicate.prediction_id) {
    throw new ApiError('conflict', 'Webhook is for another prediction');
  }
  if (prediction.status === 'starting' || prediction.status === 'processing') {
    await stub.touch();
  } else if (prediction.status === 'succeeded') {
    const { controlMap, images } = predictionImages(prediction, {
      keep: state.replicate.keep,
      firstImage: state.replicate.first_image,
    });
    const outputs: StoredOutput[] = await Promise.all(
      images.map(async (url, index) => {
        const key = `outputs/${state.id}/${index}.png`;
        const contentType = await copyOutput(c.env, url, key);
        return { index, key, content_type: contentType, width: state.width, height: state.height };
      }),
    );
    const control_maps = controlMap
      ? [{ index: 0, type: state.job.controls[0]!.type, key: `controls/${state.id}/0-replicate.png` }]
      : [];
    if (controlMap) await copyOutput(c.env, controlMap, control_maps[0]!.key);
    await stub.succeed({ outputs, control_maps, steps: state.steps });
  } else {
    await stub.fail({
      code: 'backend_error',
      message: `Replicate prediction ${prediction.status}${prediction.error ? `: ${String(prediction.error)}` : ''}`,
      details: [],
      retryable: prediction.status !== 'canceled',
    });
  }
  return c.json({ received: true });
});
