import {
  DEFAULT_MASK_BLUR,
  type DerivedSize,
  effectiveStrength,
  type GenerationRequest,
  type ImageRef,
  type Size,
  upscaledSize,
  type Warning,
} from '@contour/shared/contracts';
import { ApiError } from '../lib/errors.ts';
import { type LoadedImage, loadImage } from './control.ts';
import type { Attachments } from './input.ts';
import type { ImageUrlSigner } from './signed-url.ts';
import { CONTENT_TYPES, storeImage } from './store.ts';

/** The WorkerJob fields of an img2img / inpaint request (none for text-to-image). */
export interface InitJobFields {
  init_image?: ImageRef;
  strength?: number;
  mask?: ImageRef;
  mask_blur?: number;
}

/** A request's init image and mask, read and checked but not stored yet. */
export interface LoadedInit {
  init?: LoadedImage;
  mask?: LoadedImage;
}

/**
 * Reads `init_image` and `mask` with the same source, format and size limits as control images (422/413 on the
 * field at fault). Runs before anything is stored, so a bad input leaves nothing behind in R2.
 */
export async function loadInitImages(
  request: GenerationRequest,
  options: { attachments: Attachments; allowInsecureUrls: boolean },
): Promise<LoadedInit> {
  if (request.init_image === undefined) return {};
  const init = await loadImage(request.init_image, { path: 'init_image', ...options });
  if (request.mask === undefined) return { init };
  return { init, mask: await loadImage(request.mask, { path: 'mask', ...options }) };
}

/** The output size of an `upscale` request: init_image's size times the factor, or a 422 naming `upscale`. */
export function upscaleOutputSize(loaded: LoadedInit, factor: number): DerivedSize {
  const header = loaded.init!.header;
  const { size, problem } = upscaledSize(header, factor);
  if (problem !== null) {
    const message = `init_image ${header.width}x${header.height} times ${factor} gives ${size.width}x${size.height}: ${problem}`;
    throw new ApiError('validation_failed', message, [{ path: 'upscale', message: problem }]);
  }
  return { ...size, adjusted: false, original: size };
}

/**
 * Stores the loaded init image and mask for the worker and resolves strength and mask blur. The worker resizes
 * both to the output size; a stretch is reported as a warning like a control image's.
 */
export async function storeInitImages(
  loaded: LoadedInit,
  request: GenerationRequest,
  context: {
    generationId: string;
    size: Size;
    bucket: R2Bucket;
    /** Signs the stored images' URLs (jobs get the long-lived ones: they wait in the queue). */
    signer: ImageUrlSigner;
    account?: string | null;
  },
  warnings: Warning[],
): Promise<InitJobFields> {
  if (!loaded.init) return {};
  const { generationId, size, bucket, signer, account } = context;
  const store = async (image: LoadedImage, name: 'init_image' | 'mask') => {
    const { width, height, format } = image.header;
    if (Math.abs(width / height / (size.width / size.height) - 1) > 0.02) {
      warnings.push({
        code: 'control_resized',
        message: `${name} ${width}x${height} is stretched to ${size.width}x${size.height}`,
        path: name,
      });
    }
    return storeImage(bucket, `inputs/${generationId}/${name}.${format}`, image.bytes, {
      contentType: CONTENT_TYPES[format],
      width,
      height,
      signer,
      account,
    });
  };
  const init = await store(loaded.init, 'init_image');
  const mask = loaded.mask ? await store(loaded.mask, 'mask') : undefined;
  return {
    init_image: init,
    strength: effectiveStrength(request)!,
    ...(mask ? { mask, mask_blur: request.mask_blur ?? DEFAULT_MASK_BLUR } : {}),
  };
}
