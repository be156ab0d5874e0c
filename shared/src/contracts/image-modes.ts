/**
 * Request fields of the image-input modes: img2img (`init_image` + `strength`) and inpainting (`mask`, white =
 * repaint, with `mask_blur`). Kept apart from generation-request.ts so the modes read as one piece.
 */
import { z } from 'zod';
import { ImageSourceSchema } from './image-source.ts';
import { roundHalfEven, SIDE_MULTIPLE, type Size, sizeProblem } from './sizes.ts';

/** img2img strength when none is given: diffusers' StableDiffusionControlNetImg2ImgPipeline default. */
export const DEFAULT_IMG2IMG_STRENGTH = 0.8;
/** Inpaint strength when none is given: start from pure noise, as diffusers' inpaint and ControlNet 1.1 do. */
export const DEFAULT_INPAINT_STRENGTH = 1;
/** Strength of an `upscale` (hires) pass when none is given: keep the layout, add detail. */
export const DEFAULT_UPSCALE_STRENGTH = 0.5;
/** Largest `upscale` factor. */
export const MAX_UPSCALE = 4;
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
  upscale: z
    .number()
    .gt(1)
    .max(MAX_UPSCALE)
    .optional()
    .describe(
      `Hires pass: the output size is init_image's times this factor (each side rounded to a multiple of ` +
        `${SIDE_MULTIPLE}, within the size caps), then img2img at that size (default strength ` +
        `${DEFAULT_UPSCALE_STRENGTH}); add a \`tile\` control unit on the same image to keep detail. ` +
        'Needs init_image; leave out width and height.',
    ),
};

/** The image-mode fields as parsed. */
export interface ImageModeRequest {
  init_image?: string | undefined;
  strength?: number | undefined;
  mask?: string | undefined;
  mask_blur?: number | undefined;
  upscale?: number | undefined;
  width?: number | undefined;
  height?: number | undefined;
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
  needs('upscale', 'init_image');
  if (request.upscale !== undefined && (request.width !== undefined || request.height !== undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['upscale'],
      message: 'upscale derives the output size from init_image: leave out width and height',
    });
  }
}

/** The output size of an `upscale` pass over an image of `size`, and why it is invalid (null when valid). */
export function upscaledSize(size: Size, factor: number): { size: Size; problem: string | null } {
  const side = (value: number) =>
    Math.max(SIDE_MULTIPLE, roundHalfEven((value * factor) / SIDE_MULTIPLE) * SIDE_MULTIPLE);
  const out = { width: side(size.width), height: side(size.height) };
  return { size: out, problem: sizeProblem(out) };
}

/** The strength a request runs at: given, or the mode's default; undefined without init_image. */
export function effectiveStrength(request: ImageModeRequest): number | undefined {
  if (request.init_image === undefined) return undefined;
  if (request.strength !== undefined) return request.strength;
  if (request.mask !== undefined) return DEFAULT_INPAINT_STRENGTH;
  return request.upscale !== undefined ? DEFAULT_UPSCALE_STRENGTH : DEFAULT_IMG2IMG_STRENGTH;
}

/** Denoising steps an image-mode request runs of `steps` (diffusers' get_timesteps, at least one). */
export function denoisingSteps(steps: number, strength: number | undefined): number {
  if (strength === undefined) return steps;
  return Math.max(1, Math.min(steps, Math.floor(steps * strength)));
}
