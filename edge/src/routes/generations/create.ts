import {
  composePrompts,
  denoisingSteps,
  formatSize,
  type GenerationRequest,
  GenerationRequestSchema,
  generationCost,
  JOB_CONTRACT_VERSION,
  MAX_SEED,
  type Warning,
  type WorkerJob,
} from '@contour/shared/contracts';
import { Hono } from 'hono';
import type { ReserveResult } from '../../accounts/object.ts';
import { authOf } from '../../auth/middleware.ts';
import { enqueueJob } from '../../dispatch/enqueue.ts';
import { type AppEnv, type Bindings, isLocal } from '../../env.ts';
import type { GenerationState } from '../../generations/state.ts';
import { generationStub } from '../../generations/stub.ts';
import {
  edgeDecodeBudget,
  type LoadedImage,
  loadImage,
  outputSize,
  prepareControl,
} from '../../images/control.ts';
import { loadInitImages, storeInitImages, upscaleOutputSize } from '../../images/init.ts';
import { imageUrlSigner, LONG_IMAGE_URL_TTL_S } from '../../images/signed-url.ts';
import { deleteGenerationImages, randomId } from '../../images/store.ts';
import { baseUrl } from '../../lib/base-url.ts';
import { readBody } from '../../lib/body.ts';
import { ApiError } from '../../lib/errors.ts';
import { dohUrlOf, publicUrlProblem } from '../../lib/public-url.ts';
import { parseOr422 } from '../../lib/schema.ts';

/** The base model every job runs on. */
export const BASE_MODEL = 'sd15';
/** Longest `Prefer: wait` the API honours, in seconds. */
export const MAX_PREFER_WAIT_S = 60;
/** Edge decode work one request may spend, in per-image budgets (`EDGE_PREPROCESS_MAX_PIXELS` units). */
export const EDGE_REQUEST_BUDGET_FACTOR = 2;
/** Time a GPU worker has to finish a job once queued. */
export const JOB_DEADLINE_MS = 10 * 60_000;

/** `Prefer: wait=N` -> N seconds (capped), or null when absent. */
export function preferWaitSeconds(header: string | undefined): number | null {
  const match = header?.match(/(?:^|[,;\s])wait=(\d+)/i);
  if (!match) return null;
  return Math.min(MAX_PREFER_WAIT_S, Number(match[1]));
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! % (MAX_SEED + 1);
}

/** Reads, validates and stores everything a generation needs, and builds its queued state. */
export async function buildGeneration(
  request: GenerationRequest,
  attachments: Map<string, Uint8Array>,
  env: Bindings,
  origin: string,
  account: string | null = null,
): Promise<GenerationState> {
  const id = `gen_${randomId()}`;
  const allowInsecureUrls = isLocal(env);
  const dohUrl = dohUrlOf(env);
  const images = await Promise.all(
    request.controls.map((unit, index) =>
      loadImage(unit.image, { path: `controls.${index}.image`, attachments, allowInsecureUrls, dohUrl }),
    ),
  );
  const masks = await Promise.all(
    request.controls.map((unit, index) =>
      'mask' in unit && typeof unit.mask === 'string'
        ? loadImage(unit.mask, { path: `controls.${index}.mask`, attachments, allowInsecureUrls, dohUrl })
        : Promise.resolve<LoadedImage | null>(null),
    ),
  );
  const loadedInit = await loadInitImages(request, { attachments, allowInsecureUrls });
  const size =
    request.upscale !== undefined
      ? upscaleOutputSize(loadedInit, request.upscale)
      : outputSize(request, images[0]!.header);
  const warnings: Warning[] = [];
  if (size.adjusted) {
    warnings.push({
      code: 'size_adjusted',
      message: `resize_image gives ${formatSize(size.original)}, over the size caps; generating ${formatSize(size)}`,
      path: 'image_resolution',
    });
  }
  images.forEach((image, index) => {
    const aspectIn = image.header.width / image.header.height;
    if (Math.abs(aspectIn / (size.width / size.height) - 1) > 0.02) {
      warnings.push({
        code: 'control_resized',
        message: `control image ${image.header.width}x${image.header.height} is stretched to ${formatSize(size)}`,
        path: `controls.${index}.image`,
      });
    }
  });
  // The edge decodes at most one budget per image and two per request (up to four units could each be at the
  // budget); what is left over is preprocessed by the worker.
  const edgeMaxPixels = edgeDecodeBudget(env);
  let edgeWorkLeft = EDGE_REQUEST_BUDGET_FACTOR * edgeMaxPixels;
  const edgeBudgets = images.map((image) => {
    if (image.work.units > edgeMaxPixels || image.work.units > edgeWorkLeft) return -1;
    edgeWorkLeft -= image.work.units;
    return edgeMaxPixels;
  });
  const seed = request.seed ?? randomSeed();
  const prepared = await Promise.all(
    request.controls.map((unit, index) =>
      prepareControl(unit, index, images[index]!, masks[index]!, {
        seed,
        generationId: id,
        size,
        bucket: env.IMAGES,
        // Jobs wait in the queue and may be retried: their image URLs outlive the ones shown to clients.
        signer: imageUrlSigner(env, origin, LONG_IMAGE_URL_TTL_S),
        account,
        edgeMaxPixels: edgeBudgets[index]!,
      }),
    ),
  );
  const initFields = await storeInitImages(
    loadedInit,
    request,
    {
      generationId: id,
      size,
      bucket: env.IMAGES,
      signer: imageUrlSigner(env, origin, LONG_IMAGE_URL_TTL_S),
      account,
    },
    warnings,
  );
  const prompts = composePrompts(request);
  const job: WorkerJob = {
    version: JOB_CONTRACT_VERSION,
    job_id: id,
    generation_id: id,
    attempt: 1,
    base_model: BASE_MODEL,
    prompt: prompts.prompt,
    negative_prompt: prompts.negative_prompt,
    width: size.width,
    height: size.height,
    steps: request.steps,
    guidance_scale: request.guidance_scale,
    eta: request.eta,
    seed,
    num_images: request.num_images,
    guess_mode: request.guess_mode,
    scheduler: request.scheduler,
    output_format: request.output_format,
    controls: prepared.map((p) => p.job),
    ...initFields,
    deadline_at: Date.now() + JOB_DEADLINE_MS,
  };
  const now = new Date();
  return {
    id,
    status: 'queued',
    step: 0,
    total: denoisingSteps(request.steps, initFields.strength) * request.num_images,
    created_at: now.toISOString(),
    started_at: null,
    finished_at: null,
    last_activity_ms: now.getTime(),
    seed,
    width: size.width,
    height: size.height,
    steps: request.steps,
    num_images: request.num_images,
    output_format: request.output_format,
    outputs: [],
    control_maps: prepared.flatMap((p, index) =>
      p.controlMapKey ? [{ index, type: request.controls[index]!.type, key: p.controlMapKey }] : [],
    ),
    credits: generationCost({
      width: size.width,
      height: size.height,
      steps: request.steps,
      num_images: request.num_images,
      control_units: request.controls.length,
      strength: initFields.strength,
    }),
    captured: false,
    error: null,
    warnings,
    metadata: request.metadata ?? {},
    webhook: request.webhook ?? null,
    attempts: 0,
    job,
    base_url: origin,
  };
}

/** The error for a refused reservation: 402 with the shortfall, or 403 for a client token over its limits. */
export function refusalError(refusal: Exclude<ReserveResult, { ok: true }>, cost: number): ApiError {
  if (refusal.reason === 'insufficient_credits') {
    return new ApiError(
      'insufficient_credits',
      `This generation costs ${cost} credits; ${refusal.available} are available (short by ${refusal.shortfall})`,
      [
        { path: 'cost', message: String(cost) },
        { path: 'available', message: String(refusal.available) },
        { path: 'shortfall', message: String(refusal.shortfall) },
      ],
    );
  }
  if (refusal.reason === 'client_token_limit') {
    return new ApiError('forbidden', `This client token is over its ${refusal.limit}`, [
      { path: refusal.limit, message: `remaining ${refusal.remaining}, this generation costs ${cost}` },
    ]);
  }
  return new ApiError('conflict', 'This generation was already released');
}

/** `POST /v1/generations`: validate, store inputs, create the generation's object, enqueue the job. */
export const createGenerationRoute = new Hono<AppEnv>().post('/v1/generations', async (c) => {
  const { json, attachments } = await readBody(c.req.raw);
  const request = parseOr422(GenerationRequestSchema, json);
  if (request.webhook) {
    const problem = await publicUrlProblem(new URL(request.webhook), {
      allowInsecure: isLocal(c.env),
      dohUrl: dohUrlOf(c.env),
    });
    if (problem) {
      throw new ApiError('validation_failed', `webhook: ${problem}`, [{ path: 'webhook', message: problem }]);
    }
  }
  const origin = baseUrl(c.env, c.req.url);
  const auth = authOf(c);
  const state = await buildGeneration(request, attachments, c.env, origin, auth.accountId);
  state.billing = {
    account_id: auth.accountId,
    key_id: auth.keyId,
    client_token_id: auth.clientToken?.id ?? null,
  };
  const stub = generationStub(c.env, state.id);
  const opened = await stub.open(state, auth.clientToken);
  if (!opened.ok) {
    // Nothing will run: the inputs and control maps stored for it must not linger in R2.
    await deleteGenerationImages(c.env.IMAGES, state.id);
    throw refusalError(opened.refusal, state.credits);
  }
  let generation = opened.generation;
  try {
    await enqueueJob(c.env, state.job);
  } catch (error) {
    console.error('enqueue failed', error);
    await stub.fail({
      code: 'backend_unavailable',
      message: 'The job queue is unavailable',
      details: [],
      retryable: true,
    });
    throw new ApiError('backend_unavailable', 'The job queue is unavailable; nothing was charged', [], {
      'retry-after': '5',
    });
  }
  const waitS = preferWaitSeconds(c.req.header('prefer'));
  if (waitS !== null && waitS > 0) {
    generation = (await stub.waitForTerminal(waitS * 1000)) ?? generation;
    c.header('preference-applied', `wait=${waitS}`);
  }
  c.header('location', generation.urls.self);
  const finished = generation.status !== 'queued' && generation.status !== 'running';
  return c.json(generation, finished ? 200 : 202);
});
