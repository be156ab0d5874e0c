import { CONTROL_TYPE_INFO, PreprocessRequestSchema, type PreprocessResult } from '@contour/shared/contracts';
import { resizeTarget } from '@contour/shared/preprocess';
import { Hono } from 'hono';
import { type AppEnv, isLocal } from '../env.ts';
import {
  edgeDecodeBudget,
  imageErrorToApi,
  loadImage,
  runSharedPreprocessor,
  SHARED_PREPROCESSORS,
} from '../images/control.ts';
import { imageUrlSigner } from '../images/signed-url.ts';
import { randomId, storeImage } from '../images/store.ts';
import { baseUrl } from '../lib/base-url.ts';
import { readBody } from '../lib/body.ts';
import { ApiError } from '../lib/errors.ts';
import { dohUrlOf } from '../lib/public-url.ts';
import { parseOr422 } from '../lib/schema.ts';

/** `/v1/preprocess` may spend this many times the edge's per-image decode budget (~1.6 s of one core). */
export const PREPROCESS_BUDGET_FACTOR = 4;

/**
 * `POST /v1/preprocess`: only the control map (like A1111's /controlnet/detect), made at the edge with
 * the shared code: the image goes through the original `resize_image(img, image_resolution)` first.
 */
export const preprocessRoute = new Hono<AppEnv>().post('/v1/preprocess', async (c) => {
  const { json, attachments } = await readBody(c.req.raw);
  const request = parseOr422(PreprocessRequestSchema, json);
  const name = SHARED_PREPROCESSORS[request.type];
  if (!name) {
    throw new ApiError(
      'model_not_available',
      `No ${request.type} preprocessor is available (${CONTROL_TYPE_INFO[request.type].preprocessor})`,
      [{ path: 'type', message: `the ${request.type} preprocessor is not served` }],
    );
  }
  const image = await loadImage(request.image, {
    path: 'image',
    attachments,
    allowInsecureUrls: isLocal(c.env),
    dohUrl: dohUrlOf(c.env),
  });
  // Only the edge runs this route: it preprocesses what the edge can decode within its CPU budget.
  const budget = PREPROCESS_BUDGET_FACTOR * edgeDecodeBudget(c.env);
  if (image.work.units > budget) {
    const message = `image needs ~${image.work.units} units of decode work (${image.work.width}x${image.work.height}, ${image.work.scans} scans); /v1/preprocess takes up to ${budget}: send a smaller image, or preprocess: true in a generation`;
    throw new ApiError('image_too_large', `image: ${message}`, [{ path: 'image', message }]);
  }
  let size: { width: number; height: number };
  try {
    size = resizeTarget(image.header.width, image.header.height, request.image_resolution);
  } catch (error) {
    throw imageErrorToApi(error, 'image');
  }
  const png = await runSharedPreprocessor(
    name,
    image,
    size,
    request.params as Record<string, number>,
    'image',
    budget,
  );
  const key = `controls/gen_pre${randomId()}/${request.type}.png`;
  const stored = await storeImage(c.env.IMAGES, key, png, {
    contentType: 'image/png',
    ...size,
    signer: imageUrlSigner(c.env, baseUrl(c.env, c.req.url)),
    account: c.get('auth')?.accountId ?? null,
  });
  const result: PreprocessResult = {
    type: request.type,
    width: size.width,
    height: size.height,
    url: stored.url,
    stage: 'edge',
  };
  return c.json(result);
});
