/**
 * The published price of a generation, in credits. It grows with the work the GPU does: denoising
 * steps x megapixels x images, plus half again for each extra control unit (each adds a ControlNet
 * pass per step). `GET /v1/pricing` publishes these constants.
 */

/** Credits for one step of one 512x512 image with one control unit. */
export const CREDITS_PER_STEP_AT_512 = 1;
/** Extra fraction per additional control unit. */
export const EXTRA_CONTROL_UNIT_FACTOR = 0.5;
/** Every generation costs at least this much. */
export const MIN_CREDITS = 1;

/** What the price depends on. */
export interface PricedWork {
  width: number;
  height: number;
  steps: number;
  num_images: number;
  control_units: number;
  /**
   * img2img / inpaint strength: only int(steps * strength) steps run (at least one), plus one step's worth for
   * the VAE encoder pass over the input image.
   */
  strength?: number | undefined;
}

/** Step-equivalents charged for encoding the input image of img2img / inpaint. */
export const IMAGE_ENCODE_STEPS = 1;

/** Credits charged for the work, rounded up to a whole credit. */
export function generationCost(work: PricedWork): number {
  const megapixelFactor = (work.width * work.height) / (512 * 512);
  const controlFactor = 1 + EXTRA_CONTROL_UNIT_FACTOR * Math.max(0, work.control_units - 1);
  const steps =
    work.strength === undefined
      ? work.steps
      : Math.max(1, Math.min(work.steps, Math.floor(work.steps * work.strength))) + IMAGE_ENCODE_STEPS;
  const raw = CREDITS_PER_STEP_AT_512 * steps * megapixelFactor * work.num_images * controlFactor;
  return Math.max(MIN_CREDITS, Math.ceil(raw - 1e-9));
}
