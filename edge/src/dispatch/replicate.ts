import type { ControlType, WorkerJob } from '@contour/shared/contracts';
import Replicate, { type Prediction, validateWebhook } from 'replicate';
import type { Bindings } from '../env.ts';

/**
 * The second backend: Replicate's hosted ControlNet models. Our request is mapped to their inputs,
 * their webhook is verified (signature by the `replicate` package, plus the timestamp window and
 * replay dedupe it does not do), and their outputs are copied into R2 because Replicate deletes
 * them after an hour.
 */

/** Attempts per Replicate API call on 429/5xx/network errors. */
export const REPLICATE_MAX_ATTEMPTS = 4;
/** First backoff delay; doubles per attempt, with up to 25% jitter. */
export const REPLICATE_BACKOFF_BASE_MS = 500;
/** Longest single wait, also the cap on a server's Retry-After. */
export const REPLICATE_BACKOFF_MAX_MS = 20_000;
/** Webhooks older or newer than this are refused (replay protection the client library lacks). */
export const REPLICATE_WEBHOOK_TOLERANCE_S = 300;

/** ControlNet 1.0 models by lllyasviel's types, as jagilley published them (SD1.5). */
const JAGILLEY_MODELS: Partial<Record<ControlType, string>> = {
  canny: 'jagilley/controlnet-canny',
  depth: 'jagilley/controlnet-depth',
  hed: 'jagilley/controlnet-hed',
  mlsd: 'jagilley/controlnet-hough',
  normal: 'jagilley/controlnet-normal',
  openpose: 'jagilley/controlnet-pose',
  scribble: 'jagilley/controlnet-scribble',
  seg: 'jagilley/controlnet-seg',
};
/** 1.1-only types go to rossjillian/controlnet, which takes the type as `structure`. */
const ROSSJILLIAN_STRUCTURES: Partial<Record<ControlType, string>> = {
  softedge: 'softedge',
  lineart: 'lineart',
  lineart_anime: 'lineart_anime',
  shuffle: 'shuffle',
  tile: 'tile',
  ip2p: 'ip2p',
};

/** A prediction to create: the model (and pinned version when configured) and its input. */
export interface ReplicateCall {
  model: string;
  version?: string;
  input: Record<string, unknown>;
  /** How many outputs to keep (their num_samples only offers 1 or 4). */
  keep: number;
  /** Index in the output list of the first generated image (jagilley returns the control map first). */
  firstImage: number;
}

/** Nearest of the resolutions their apps accept. */
function nearestResolution(shortSide: number, allowed: readonly number[]): number {
  return allowed.reduce((best, r) => (Math.abs(r - shortSide) < Math.abs(best - shortSide) ? r : best));
}

/**
 * Maps a job to a Replicate call, or explains why it cannot run there (several control units, a
 * ready control map where their models always run their own detector, guess mode, a sampler other than
 * DDIM, inpaint masks, an init image).
 */
export function replicateCall(job: WorkerJob, versions: Record<string, string> = {}): ReplicateCall | string {
  if (job.controls.length !== 1) return 'Replicate models take exactly one control unit';
  if (job.guess_mode) return 'Replicate models have no guess mode';
  // jagilley's apps only run DDIM; rossjillian's model does not document its sampler.
  if (job.scheduler !== 'ddim') return `Replicate models sample with ddim only, not ${job.scheduler}`;
  // Their ControlNet apps are text-to-image only: an img2img / inpaint job would silently lose its image.
  if (job.init_image) return 'Replicate models have no img2img or inpaint (init_image)';
  const control = job.controls[0]!;
  const source = control.preprocess ? control.image : control.source;
  if (!source) return 'Replicate models run their own preprocessor and need the original image';
  const shortSide = Math.min(job.width, job.height);
  const common = {
    image: source.url,
    prompt: job.prompt,
    seed: job.seed,
  };
  const jagilley = JAGILLEY_MODELS[control.type];
  if (jagilley) {
    const input: Record<string, unknown> = {
      ...common,
      num_samples: job.num_images === 1 ? '1' : '4',
      image_resolution: String(nearestResolution(shortSide, [256, 512, 768])),
      ddim_steps: job.steps,
      scale: job.guidance_scale,
      eta: job.eta,
      a_prompt: '', // our prompt is already composed with the added prompt
      n_prompt: job.negative_prompt,
    };
    if (control.type === 'canny') {
      input['low_threshold'] = control.params['low'] ?? 100;
      input['high_threshold'] = control.params['high'] ?? 200;
    }
    return { model: jagilley, version: versions[jagilley], input, keep: job.num_images, firstImage: 1 };
  }
  const structure = ROSSJILLIAN_STRUCTURES[control.type];
  if (structure) {
    const model = 'rossjillian/controlnet';
    return {
      model,
      version: versions[model],
      input: {
        ...common,
        structure,
        strength: control.strength,
        num_outputs: job.num_images,
        image_resolution: nearestResolution(shortSide, [256, 512, 768]),
        steps: job.steps,
        scale: job.guidance_scale,
        negative_prompt: job.negative_prompt,
      },
      keep: job.num_images,
      firstImage: 0,
    };
  }
  return `No Replicate model serves ${control.type}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Delay before retry `attempt` (1-based): Retry-After when the server gives one, else exponential + jitter. */
export function replicateBackoffMs(attempt: number, retryAfter: string | null): number {
  const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(REPLICATE_BACKOFF_MAX_MS, seconds * 1000);
  const base = Math.min(REPLICATE_BACKOFF_MAX_MS, REPLICATE_BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return base * (1 + Math.random() * 0.25);
}

/** Replicate gave up for now (rate limit or outage); the queue retries the job later. */
export class ReplicateUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
    this.name = 'ReplicateUnavailableError';
  }
}

/**
 * fetch for the `replicate` client with our own retry policy: its built-in loop neither backs off
 * nor honours Retry-After. Once we give up, later calls in the same client fail fast so its loop
 * cannot hammer the API.
 */
export function backoffFetch(baseFetch: typeof fetch = fetch): typeof fetch {
  let gaveUp: ReplicateUnavailableError | null = null;
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    if (gaveUp) throw gaveUp;
    let lastRetryAfter = 5;
    for (let attempt = 1; attempt <= REPLICATE_MAX_ATTEMPTS; attempt++) {
      let response: Response | null = null;
      try {
        response = await baseFetch(input, init);
      } catch (error) {
        if (attempt === REPLICATE_MAX_ATTEMPTS) {
          gaveUp = new ReplicateUnavailableError(`Replicate unreachable: ${String(error)}`, lastRetryAfter);
          throw gaveUp;
        }
      }
      if (response && response.status !== 429 && response.status < 500) return response;
      const retryAfter = response?.headers.get('retry-after') ?? null;
      if (retryAfter !== null && Number.isFinite(Number(retryAfter))) lastRetryAfter = Number(retryAfter);
      if (attempt === REPLICATE_MAX_ATTEMPTS) {
        await response?.body?.cancel();
        gaveUp = new ReplicateUnavailableError(`Replicate answered ${response?.status}`, lastRetryAfter);
        throw gaveUp;
      }
      await response?.body?.cancel();
      await sleep(replicateBackoffMs(attempt, retryAfter));
    }
    throw new Error('unreachable');
  }) as typeof fetch;
}

/** A Replicate client for this deployment (token, optional base URL for tests/proxies, our fetch). */
export function replicateClient(env: Bindings, baseFetch?: typeof fetch): Replicate {
  return new Replicate({
    auth: env.REPLICATE_API_TOKEN,
    baseUrl: env.REPLICATE_BASE_URL || undefined,
    fetch: backoffFetch(baseFetch),
  });
}

/** Pinned model versions from `REPLICATE_VERSIONS` (JSON object model -> version). */
export function replicateVersions(env: Bindings): Record<string, string> {
  try {
    return JSON.parse(env.REPLICATE_VERSIONS || '{}') as Record<string, string>;
  } catch {
    return {};
  }
}

/** Creates the prediction with our webhook; Replicate calls back with `start` and `completed`. */
export async function createPrediction(
  env: Bindings,
  job: WorkerJob,
  call: ReplicateCall,
  webhookUrl: string,
) {
  const client = replicateClient(env);
  const options = call.version
    ? { version: call.version, input: call.input }
    : { model: call.model, input: call.input };
  return client.predictions.create({
    ...options,
    webhook: `${webhookUrl}?generation=${encodeURIComponent(job.generation_id)}`,
    webhook_events_filter: ['start', 'completed'],
  });
}

/** Why a webhook was refused. */
export type WebhookRejection = 'missing_headers' | 'stale' | 'bad_signature';

/** Verifies a Replicate webhook: signature (via `replicate`), then the timestamp window. */
export async function verifyReplicateWebhook(
  headers: Headers,
  body: string,
  secret: string,
  now = Date.now(),
): Promise<{ ok: true; id: string } | { ok: false; reason: WebhookRejection }> {
  const id = headers.get('webhook-id');
  const timestamp = headers.get('webhook-timestamp');
  const signature = headers.get('webhook-signature');
  if (!id || !timestamp || !signature || !secret) return { ok: false, reason: 'missing_headers' };
  const age = Math.abs(now / 1000 - Number(timestamp));
  if (!Number.isFinite(age) || age > REPLICATE_WEBHOOK_TOLERANCE_S) return { ok: false, reason: 'stale' };
  const valid = await validateWebhook({ id, timestamp, signature, body, secret }).catch(() => false);
  return valid ? { ok: true, id } : { ok: false, reason: 'bad_signature' };
}

/** The output URLs of a finished prediction, generated images only. */
export function predictionImages(
  prediction: Pick<Prediction, 'output'>,
  call: Pick<ReplicateCall, 'keep' | 'firstImage'>,
) {
  const output = Array.isArray(prediction.output)
    ? prediction.output
    : prediction.output
      ? [prediction.output]
      : [];
  const urls = output.filter((u): u is string => typeof u === 'string');
  return {
    controlMap: call.firstImage > 0 ? (urls[0] ?? null) : null,
    images: urls.slice(call.firstImage, call.firstImage + call.keep),
  };
}
