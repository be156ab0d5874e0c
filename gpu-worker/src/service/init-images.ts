import type { ImageRef, WorkerJob } from '@contour/shared/contracts';
import { hwc3, type Image8 } from '@contour/shared/preprocess';
import { sha256Hex } from '@contour/shared/signing';
import { decodePool } from './decode-pool.ts';
import { JobError } from './errors.ts';
import { type FetchImageOptions, fetchImage } from './images.ts';

/** A job's img2img / inpaint input at the job's size. */
export interface PreparedInit {
  image: Image8<3>;
  /** Strength (0, 1], resolved by the edge. */
  strength: number;
  /** Repaint weights in [0, 1] per pixel (first channel / 255), unblurred. */
  mask?: Float32Array;
  /** Gaussian sigma in pixels for the mask. */
  maskBlur: number;
  fetchMs: number;
}

/** Fetches, verifies and decodes one referenced image, resized to width x height. */
async function loadRef(
  ref: ImageRef,
  what: string,
  width: number,
  height: number,
  options: FetchImageOptions,
) {
  const bytes = await fetchImage(ref.url, options);
  const digest = await sha256Hex(bytes);
  if (digest !== ref.sha256) {
    throw new JobError('image_invalid', `${what}: sha256 ${digest} does not match the job's ${ref.sha256}`);
  }
  // Decoded in the image thread, like control images, so a costly file never stalls the HTTP thread.
  return decodePool.image({ bytes, width, height, what });
}

/**
 * The job's init image and mask like control images (fetched, sha256-checked, decoded, resized to the job's
 * size, linear as the original's cv2.resize), or undefined for text-to-image.
 */
export async function prepareInit(
  job: Pick<WorkerJob, 'init_image' | 'mask' | 'strength' | 'mask_blur' | 'width' | 'height'>,
  options: FetchImageOptions,
): Promise<PreparedInit | undefined> {
  if (!job.init_image) {
    if (job.mask) throw new JobError('validation_failed', 'mask needs init_image');
    return undefined;
  }
  const started = performance.now();
  const { width, height } = job;
  const [image, mask] = await Promise.all([
    loadRef(job.init_image, 'init_image', width, height, options),
    job.mask ? loadRef(job.mask, 'mask', width, height, options) : undefined,
  ]);
  let weights: Float32Array | undefined;
  if (mask) {
    weights = new Float32Array(width * height);
    for (let p = 0; p < weights.length; p++) weights[p] = mask.data[p * mask.channels]! / 255;
  }
  return {
    image: hwc3(image),
    strength: job.strength ?? 1,
    ...(weights ? { mask: weights } : {}),
    maskBlur: job.mask_blur ?? 0,
    fetchMs: performance.now() - started,
  };
}
