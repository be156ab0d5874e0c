import type {
  ApiErrorBody,
  ControlType,
  Generation,
  GenerationStatus,
  OutputFormat,
  Warning,
  WorkerJob,
} from '@contour/shared/contracts';
import { type ImageUrlSigner, signedImageUrl } from '../images/signed-url.ts';

/** An output image as stored in R2. */
export interface StoredOutput {
  index: number;
  key: string;
  content_type: string;
  width: number;
  height: number;
}

/** A control map as stored in R2. */
export interface StoredControlMap {
  index: number;
  type: ControlType;
  key: string;
}

/** Everything a generation's Durable Object persists. */
export interface GenerationState {
  id: string;
  status: GenerationStatus;
  step: number;
  total: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** Last time the worker was heard from (ms); the stuck-job alarm measures from it. */
  last_activity_ms: number;
  seed: number;
  width: number;
  height: number;
  steps: number;
  num_images: number;
  output_format: OutputFormat;
  outputs: StoredOutput[];
  control_maps: StoredControlMap[];
  credits: number;
  captured: boolean;
  error: ApiErrorBody | null;
  warnings: Warning[];
  metadata: Record<string, string>;
  webhook: string | null;
  /** Dispatch attempts so far (queue deliveries that reached a worker, alarm retries). */
  attempts: number;
  /** The job as enqueued, kept so the alarm can enqueue it again. */
  job: WorkerJob;
  /** Origin the public URLs are built on. */
  base_url: string;
  /** Set when the generation runs on Replicate instead of the GPU pool. */
  replicate?: { prediction_id: string; keep: number; first_image: number } | null;
  /** Who pays (generations created through the authenticated API); absent = not billed. */
  billing?: { account_id: string; key_id: string | null; client_token_id: string | null } | null;
  /** True once the account's hold was captured or released. */
  settled?: boolean;
  /** True once the terminal webhook deliveries were scheduled. */
  webhooks_scheduled?: boolean;
  /** Pull mode: the worker currently holding the job (the only one whose reports count). */
  pull_claim?: PullClaim | null;
}

/** A pull-mode worker's claim on a generation (granted once per live holder, see GenerationObject.claimPull). */
export interface PullClaim {
  claim_id: string;
  worker_id: string;
  job_id: string;
  claimed_ms: number;
  /** Last report from the holder (progress or heartbeat), epoch ms. */
  last_seen_ms: number;
  /** How often the holder promised to report; silent for 3 periods = presumed dead. */
  heartbeat_ms: number;
}

/** The public resource for a stored state, with image URLs signed by `signer` (images are private). */
export async function toGeneration(state: GenerationState, signer: ImageUrlSigner): Promise<Generation> {
  const keys = [...state.outputs.map((o) => o.key), ...state.control_maps.map((m) => m.key)];
  const urls = new Map(
    await Promise.all(keys.map(async (key) => [key, await signedImageUrl(signer, key)] as const)),
  );
  const image = (key: string) => urls.get(key)!;
  const self = `${state.base_url}/v1/generations/${state.id}`;
  return {
    id: state.id,
    object: 'generation',
    status: state.status,
    progress: { step: state.step, total: state.total },
    created_at: state.created_at,
    started_at: state.started_at,
    finished_at: state.finished_at,
    seed: state.seed,
    width: state.width,
    height: state.height,
    steps: state.steps,
    num_images: state.num_images,
    output_format: state.output_format,
    outputs: state.outputs.map((o) => ({
      index: o.index,
      url: image(o.key),
      content_type: o.content_type,
      width: o.width,
      height: o.height,
    })),
    control_maps: state.control_maps.map((m) => ({ index: m.index, type: m.type, url: image(m.key) })),
    cost: { credits: state.credits, captured: state.captured },
    error: state.error,
    warnings: state.warnings,
    metadata: state.metadata,
    urls: { self, events: `${self}/events`, cancel: `${self}/cancel` },
  };
}
