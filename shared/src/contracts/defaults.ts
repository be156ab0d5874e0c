/**
 * Defaults of the original ControlNet 1.0 gradio apps (gradio_canny2image.py and siblings), so a request
 * that sets nothing reproduces what the original code would do.
 */

/** The apps' `a_prompt`, appended to the user's prompt as `prompt + ', ' + a_prompt`. */
export const DEFAULT_ADDED_PROMPT = 'best quality, extremely detailed';
/** The apps' `n_prompt`. */
export const DEFAULT_NEGATIVE_PROMPT =
  'longbody, lowres, bad anatomy, bad hands, missing fingers, extra digit, fewer digits, cropped, worst quality, low quality';
/** `ddim_steps`. */
export const DEFAULT_STEPS = 20;
/** `scale` (classifier-free guidance). */
export const DEFAULT_GUIDANCE_SCALE = 9.0;
/** `eta` (0 = deterministic DDIM). */
export const DEFAULT_ETA = 0;
/** Control `strength` (multiplies all 13 residuals). */
export const DEFAULT_CONTROL_STRENGTH = 1.0;
/** Guess-mode residual decay: residual i is scaled by strength * GUESS_MODE_DECAY^(12 - i). */
export const GUESS_MODE_DECAY = 0.825;

/** The prompts the model actually sees, composed as the original apps do. */
export function composePrompts(request: { prompt: string; added_prompt: string; negative_prompt: string }): {
  prompt: string;
  negative_prompt: string;
} {
  // An empty added prompt means "none"; the original would leave a trailing ", ".
  const prompt = request.added_prompt === '' ? request.prompt : `${request.prompt}, ${request.added_prompt}`;
  return { prompt, negative_prompt: request.negative_prompt };
}
