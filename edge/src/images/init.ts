import {
  DEFAULT_MASK_BLUR,
  effectiveStrength,
  type GenerationRequest,
  type ImageRef,
  type Size,
  type Warning,
} from '@contour/shared/contracts';
import { loadImage } from './control.ts';
import type { Attachments } from './input.ts';
import { CONTENT_TYPES, storeImage } from './store.ts';

/** The WorkerJob fields of an img2img / inpaint request (none for text-to-image). */
export interface InitJobFields {
  init_image?: ImageRef;
  strength?: number;
  mask?: ImageRef;
  mask_blur?: number;
}

/**
 * Loads `init_image` and `mask` with the same source, format and size limits as control images (422/413 on the
 * field at fault), stores them for the worker and resolves strength and mask blur. The worker resizes both to
 * the output size; a stretch is reported as a warning like a control image's.
 */
export async function prepareInitImages(
  request: GenerationRequest,
  context: {
    attachments: Attachments;
    allowInsecureUrls: boolean;
    generationId: string;
    size: Size;
    bucket: R2Bucket;
    baseUrl: string;
  },
  warnings: Warning[],
): Promise<InitJobFields> {
  if (request.init_image === undefined) return {};
  const { attachments, allowInsecureUrls, generationId, size, bucket, baseUrl } = context;
  const store = async (source: string, name: 'init_image' | 'mask') => {
    const image = await loadImage(source, { path: name, attachments, allowInsecureUrls });
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
      baseUrl,
    });
  };
  const [init, mask] = await Promise.all([
    store(request.init_image, 'init_image'),
    request.mask === undefined ? undefined : store(request.mask, 'mask'),
  ]);
  return {
    init_image: init,
    strength: effectiveStrength(request)!,
    ...(mask ? { mask, mask_blur: request.mask_blur ?? DEFAULT_MASK_BLUR } : {}),
  };
}
