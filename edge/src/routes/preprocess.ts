import {
  ApiErrorBodySchema,
  ERROR_STATUS,
  type ErrorCode,
  JOB_CONTRACT_VERSION,
  PREPROCESSORS,
  type PreprocessRequest,
  PreprocessRequestSchema,
  type PreprocessResult,
  pixelPerfectResolution,
  type WorkerPreprocessRequest,
  WorkerPreprocessResultSchema,
} from '@contour/shared/contracts';
import {
  contentShuffle,
  decodeImage,
  encodePngAsync,
  type Image8,
  inpaintPreview,
  resizeImageTo,
  resizeTarget,
  tileResample,
} from '@contour/shared/preprocess';
import { Hono } from 'hono';
import { signedFetch } from '../dispatch/consumer.ts';
import {
  acquire,
  parseWorkerPool,
  skipWorker,
  UNHEALTHY_COOLDOWN_MS,
  workerOrder,
} from '../dispatch/pool.ts';
import { type AppEnv, type Bindings, isLocal } from '../env.ts';
import {
  edgeDecodeBudget,
  imageErrorToApi,
  type LoadedImage,
  loadImage,
  MAX_INPUT_PIXELS,
  runSharedPreprocessor,
  SHARED_PREPROCESSORS,
} from '../images/control.ts';
import { type ImageUrlSigner, imageUrlSigner } from '../images/signed-url.ts';
import { CONTENT_TYPES, randomId, storeImage } from '../images/store.ts';
import { baseUrl } from '../lib/base-url.ts';
import { base64ToBytes } from '../lib/base64.ts';
import { readBody } from '../lib/body.ts';
import { ApiError } from '../lib/errors.ts';
import { dohUrlOf } from '../lib/public-url.ts';
import { parseOr422 } from '../lib/schema.ts';

/** `/v1/preprocess` may spend this many times the edge's per-image decode budget (~1.6 s of one core). */
export const PREPROCESS_BUDGET_FACTOR = 4;
/** How long the edge waits for a worker's annotator run (model load on first use included; CPU workers are slow). */
export const WORKER_PREPROCESS_TIMEOUT_MS = 300_000;

type Size = { width: number; height: number };

/** Runs an edge preprocessor on the decoded image; the map comes back at `size`. */
async function runAtEdge(
  request: PreprocessRequest,
  image: LoadedImage,
  mask: LoadedImage | undefined,
  size: Size,
  budget: number,
): Promise<Uint8Array> {
  const name = request.preprocessor;
  const shared = SHARED_PREPROCESSORS[name];
  if (shared) return runSharedPreprocessor(shared, image, size, request.params, 'image', budget);
  const decode = async (loaded: LoadedImage, path: string) => {
    try {
      return await decodeImage(loaded.bytes, { maxPixels: MAX_INPUT_PIXELS, maxWork: budget });
    } catch (error) {
      throw imageErrorToApi(error, path);
    }
  };
  const decoded = await decode(image, 'image');
  let map: Image8;
  if (name === 'shuffle') {
    const seed = request.params['seed'] ?? Math.floor(Math.random() * 0x1_0000_0000);
    map = contentShuffle(decoded, size.width, size.height, seed);
  } else if (name === 'tile_resample') {
    const resized = resizeImageTo(decoded, size.width, size.height);
    const rate = request.params['down_sampling_rate'] ?? 1;
    map = resizeImageTo(
      tileResample(resized, rate, (img, w, h) => resizeImageTo(img, w, h)),
      size.width,
      size.height,
    );
  } else if (name === 'inpaint' && mask) {
    const resized = resizeImageTo(decoded, size.width, size.height);
    const maskImage = resizeImageTo(await decode(mask, 'mask'), size.width, size.height);
    map = inpaintPreview(resized, maskImage);
  } else {
    throw new ApiError('model_not_available', `the ${name} preprocessor does not run at the edge`, [
      { path: 'preprocessor', message: `${name} is not served` },
    ]);
  }
  return encodePngAsync(map);
}

/** A worker's error envelope passed on as ours (same code, message and fields), or undefined when unreadable. */
async function workerError(response: Response): Promise<ApiError | undefined> {
  const body = (await response.json().catch(() => undefined)) as { error?: unknown } | undefined;
  const parsed = ApiErrorBodySchema.safeParse(body?.error);
  if (!parsed.success || !(parsed.data.code in ERROR_STATUS)) return undefined;
  const { code, message, details } = parsed.data;
  return new ApiError(code as ErrorCode, message, details ?? []);
}

/** Sends a network preprocessor to the GPU pool (signed like jobs); the least busy healthy worker first. */
async function runOnWorker(
  env: Bindings,
  request: PreprocessRequest,
  image: LoadedImage,
  size: Size,
  signer: ImageUrlSigner,
  account: string | null,
) {
  const pool = parseWorkerPool(env.GPU_WORKERS ?? '');
  if (pool.length === 0) {
    throw new ApiError(
      'backend_unavailable',
      `${request.preprocessor} runs on the GPU pool, which this deployment does not reach directly (GPU_WORKERS is empty); use it in a generation with preprocess: true`,
      [{ path: 'preprocessor', message: 'no GPU workers configured' }],
    );
  }
  const stored = await storeImage(
    env.IMAGES,
    `inputs/gen_pre${randomId()}/image.${image.header.format}`,
    image.bytes,
    {
      contentType: CONTENT_TYPES[image.header.format],
      width: image.header.width,
      height: image.header.height,
      signer,
      account,
    },
  );
  const job: WorkerPreprocessRequest = {
    version: JOB_CONTRACT_VERSION,
    preprocessor: request.preprocessor,
    image: stored,
    params: request.params,
    ...size,
  };
  const body = JSON.stringify(job);
  let lastProblem = 'every GPU worker is busy or down';
  for (const url of workerOrder(pool)) {
    const release = acquire(url);
    try {
      const response = await signedFetch(
        env,
        url,
        '/v1/preprocess',
        'POST',
        body,
        AbortSignal.timeout(WORKER_PREPROCESS_TIMEOUT_MS),
      );
      if (response.ok) {
        const result = WorkerPreprocessResultSchema.safeParse(await response.json().catch(() => undefined));
        if (result.success) return result.data;
        lastProblem = `worker ${url} sent an invalid preprocess result`;
        continue;
      }
      const error = await workerError(response);
      // Busy, loading or broken workers: try the next. Answers about the request itself are final.
      if (response.status === 429 || response.status >= 500 || !error) {
        skipWorker(url, UNHEALTHY_COOLDOWN_MS);
        lastProblem = error?.message ?? `worker ${url} answered HTTP ${response.status}`;
        continue;
      }
      throw error;
    } catch (error) {
      if (error instanceof ApiError) throw error;
      skipWorker(url, UNHEALTHY_COOLDOWN_MS);
      lastProblem = `worker ${url} failed: ${String(error)}`;
    } finally {
      release();
    }
  }
  throw new ApiError('backend_unavailable', `${request.preprocessor}: ${lastProblem}`, [], {
    'retry-after': '5',
  });
}

/**
 * `POST /v1/preprocess`: only the control map (like A1111's /controlnet/detect). Edge preprocessors (canny,
 * scribble, invert, shuffle, tile_resample, inpaint) run here on the image resized to `image_resolution`;
 * network ones (depth, soft edge, pose...) run on a GPU worker at `detect_resolution`, their map resized to the
 * same size, and openpose's keypoints come back too.
 */
export const preprocessRoute = new Hono<AppEnv>().post('/v1/preprocess', async (c) => {
  const { json, attachments } = await readBody(c.req.raw);
  const request = parseOr422(PreprocessRequestSchema, json);
  const info = PREPROCESSORS[request.preprocessor];
  const load = (source: string, path: string) =>
    loadImage(source, {
      path,
      attachments,
      allowInsecureUrls: isLocal(c.env),
      dohUrl: dohUrlOf(c.env),
    });
  const image = await load(request.image, 'image');
  const mask = request.mask ? await load(request.mask, 'mask') : undefined;
  // Only images within the edge's CPU budget are decoded here; a worker decodes network inputs itself.
  const budget = PREPROCESS_BUDGET_FACTOR * edgeDecodeBudget(c.env);
  if (info.stage === 'edge' && image.work.units > budget) {
    const message = `image needs ~${image.work.units} units of decode work (${image.work.width}x${image.work.height}, ${image.work.scans} scans); /v1/preprocess takes up to ${budget}: send a smaller image, or preprocess: true in a generation`;
    throw new ApiError('image_too_large', `image: ${message}`, [{ path: 'image', message }]);
  }
  let size: Size;
  try {
    const target = resizeTarget(image.header.width, image.header.height, request.image_resolution);
    size = { width: target.width, height: target.height };
  } catch (error) {
    throw imageErrorToApi(error, 'image');
  }
  const signer = imageUrlSigner(c.env, baseUrl(c.env, c.req.url));
  const account = c.get('auth')?.accountId ?? null;
  const key = `controls/gen_pre${randomId()}/${request.preprocessor}.png`;
  let png: Uint8Array;
  let keypoints: PreprocessResult['keypoints'];
  let detectResolution: number | undefined;
  if (info.stage === 'edge') {
    png = await runAtEdge(request, image, mask, size, budget);
  } else {
    const params = { ...request.params };
    if (request.pixel_perfect) params['detect_resolution'] = pixelPerfectResolution(image.header, size);
    detectResolution = params['detect_resolution'];
    const result = await runOnWorker(c.env, { ...request, params }, image, size, signer, account);
    png = base64ToBytes(result.data_base64);
    keypoints = result.keypoints;
  }
  const stored = await storeImage(c.env.IMAGES, key, png, {
    contentType: 'image/png',
    ...size,
    signer,
    account,
  });
  const result: PreprocessResult = {
    type: request.type,
    preprocessor: request.preprocessor,
    width: size.width,
    height: size.height,
    url: stored.url,
    stage: info.stage,
    ...(detectResolution !== undefined ? { detect_resolution: detectResolution } : {}),
    ...(keypoints ? { keypoints } : {}),
  };
  return c.json(result);
});
