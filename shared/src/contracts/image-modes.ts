/**
 * Request fields of the image-input modes: img2img (`init_image` + `strength`) and inpainting (`mask`, white =
 * repaint, with `mask_blur`). Kept apart from generation-request.ts so the modes read as one piece.
 */
import { z } from 'zod';
import { ImageSourceSchema } from './image-source.ts';

/** img2img strength when none is given: diffusers' StableDiffusionControlNetImg2ImgPipeline default. */
export const DEFAULT_IMG2IMG_STRENGTH = 0.8;
/** Inpaint strength when none is given: start from pure noise, as diffusers' inpaint and ControlNet 1.1 do. */
export const DEFAULT_INPAINT_STRENGTH = 1;
/** Gaussian sigma (pixels) of the mask: ControlNet 1.1 gradio_inpaint's default. */
export const DEFAULT_MASK_BLUR = 5;
/** Largest accepted mask blur sigma in pixels. */
export const MAX_MASK_BLUR = 64;

/** The image-mode fields of the public request (all optional; spread into GenerationRequestSchema). */
export const imageModeFields = {
  init_image: ImageSourceSchema.optional().describe(
    'img2img: start from this image (resized to the output size) instead of pure noise.',
  ),
  strength: z
    .number()
    .gt(0)
    .max(1)
    .optional()
    .describe(
      `How much of init_image to repaint, (0, 1]: the last int(steps * strength) steps run (at least one). ` +
        `Default ${DEFAULT_IMG2IMG_STRENGTH}, or ${DEFAULT_INPAINT_STRENGTH} with a mask. Needs init_image.`,
    ),
  mask: ImageSourceSchema.optional().describe(
    'Inpaint: white (first channel > 127 after blurring: repaint) / black (keep) mask, resized to the output ' +
      'size. Unmasked pixels come back exactly as in init_image. Needs init_image.',
  ),
  mask_blur: z
    .number()
    .min(0)
    .max(MAX_MASK_BLUR)
    .optional()
    .describe(`Gaussian sigma in pixels applied to the mask (default ${DEFAULT_MASK_BLUR}). Needs mask.`),
};

/** The image-mode fields as parsed. */
export interface ImageModeRequest {
  init_image?: string | undefined;
  strength?: number | undefined;
  mask?: string | undefined;
  mask_blur?: number | undefined;
}

/** Adds a 422 issue for each image-mode field given without the field it needs. */
export function checkImageModes(
  request: ImageModeRequest,
  ctx: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  const needs = (field: keyof ImageModeRequest, needed: keyof ImageModeRequest) => {
    if (request[field] !== undefined && request[needed] === undefined) {
      ctx.addIssue({ code: 'custom', path: [field], message: `${field} needs ${needed}` });
    }
  };
  needs('strength', 'init_image');
  needs('mask', 'init_image');
  needs('mask_blur', 'mask');
}

/** The strength a request runs at: given, or the mode's default; undefined without init_image. */
export function effectiveStrength(request: ImageModeRequest): number | undefined {
  if (request.init_image === undefined) return undefined;
  return (
    request.strength ?? (request.mask !== undefined ? DEFAULT_INPAINT_STRENGTH : DEFAULT_IMG2IMG_STRENGTH)
  );
}

/** Denoising steps an image-mode request runs of `steps` (diffusers' get_timesteps, at least one). */
export function denoisingSteps(steps: number, strength: number | undefined): number {
  if (strength === undefined) return steps;
  return Math.max(1, Math.min(steps, Math.floor(steps * strength)));
}
