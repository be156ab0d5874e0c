/**
 * DDIM as the original ControlNet code runs it (ldm `DDIMSampler` / cldm `ddim_hacked.py`): the SD1.5 'scaled
 * linear' betas, the 'uniform' timestep discretisation with the +1 offset, abar[0] (not 1) as the previous
 * alpha of the last step, and every per-step scalar rounded to float32 as PyTorch holds it.
 */

/** Number of training timesteps of SD1.5. */
export const NUM_TRAIN_TIMESTEPS = 1000;

/** Raised for a step count the schedule cannot produce. */
export class SchedulerError extends Error {
  override readonly name = 'SchedulerError';
  readonly code = 'scheduler_bad_steps';
}

let cachedAlphasCumprod: Float64Array | undefined;

/**
 * alphas_cumprod of SD1.5: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2 in float64, cumprod(1 - betas),
 * then rounded to float32 (LatentDiffusion registers the buffer as float32).
 */
export function alphasCumprod(): Float64Array {
  if (cachedAlphasCumprod) return cachedAlphasCumprod;
  const n = NUM_TRAIN_TIMESTEPS;
  const start = Math.sqrt(0.00085);
  const end = Math.sqrt(0.012);
  const step = (end - start) / (n - 1);
  const out = new Float64Array(n);
  let product = 1;
  for (let i = 0; i < n; i++) {
    // torch.linspace fills the second half from the end, which keeps the last value exact.
    const root = i < n / 2 ? start + step * i : end - step * (n - 1 - i);
    product *= 1 - root * root;
    out[i] = Math.fround(product);
  }
  cachedAlphasCumprod = out;
  return out;
}

/**
 * The DDIM timesteps for `steps` requested steps, ascending: range(0, 1000, 1000 // steps) + 1 as the original.
 * Our rule where the original breaks: timesteps >= 1000 are dropped (steps = 3 gives 1, 334, 667, not 1000),
 * so the real count may differ from the request (30 -> 31, 3 -> 3, 7 -> 7 after dropping 1000). The length
 * of the result is the number of steps actually run.
 */
export function ddimTimesteps(steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > NUM_TRAIN_TIMESTEPS) {
    throw new SchedulerError(`steps must be an integer in 1..${NUM_TRAIN_TIMESTEPS}, got ${steps}`);
  }
  const stride = Math.floor(NUM_TRAIN_TIMESTEPS / steps);
  const out: number[] = [];
  for (let t = 0; t < NUM_TRAIN_TIMESTEPS; t += stride) if (t + 1 < NUM_TRAIN_TIMESTEPS) out.push(t + 1);
  return out;
}

/** The float32 scalars of one DDIM update. */
export interface DdimStepCoefficients {
  /** The model's timestep input. */
  timestep: number;
  sqrtAlpha: number;
  sqrtOneMinusAlpha: number;
  sqrtAlphaPrev: number;
  /** sqrt(1 - a_prev - sigma^2), the weight of eps in the direction term. */
  directionScale: number;
  /** eta-scaled noise standard deviation. */
  sigma: number;
}

/**
 * The sampling plan: coefficients in sampling order (highest timestep first). x_prev = sqrtAlphaPrev * x0 +
 * directionScale * eps + sigma * z with x0 = (x - sqrtOneMinusAlpha * eps) / sqrtAlpha.
 */
export function ddimSchedule(steps: number, eta = 0): DdimStepCoefficients[] {
  const f = Math.fround;
  const abar = alphasCumprod();
  const timesteps = ddimTimesteps(steps);
  const plan: DdimStepCoefficients[] = [];
  for (let index = timesteps.length - 1; index >= 0; index--) {
    const t = timesteps[index]!;
    const alpha = abar[t]!;
    const alphaPrev = index > 0 ? abar[timesteps[index - 1]!]! : abar[0]!;
    const sigma = f(eta * Math.sqrt(((1 - alphaPrev) / (1 - alpha)) * (1 - alpha / alphaPrev)));
    plan.push({
      timestep: t,
      sqrtAlpha: f(Math.sqrt(alpha)),
      sqrtOneMinusAlpha: f(Math.sqrt(f(1 - alpha))),
      sqrtAlphaPrev: f(Math.sqrt(alphaPrev)),
      directionScale: f(Math.sqrt(f(f(1 - alphaPrev) - f(sigma * sigma)))),
      sigma,
    });
  }
  return plan;
}

/** Per-residual ControlNet scales: all `strength`, or strength * 0.825^(12 - i) in guess mode. */
export function controlScales(strength: number, guessMode: boolean, count = 13): number[] {
  return Array.from({ length: count }, (_, i) =>
    guessMode ? strength * 0.825 ** (count - 1 - i) : strength,
  );
}

/** diffusers' control_guidance_start/end rule: at step i of n the unit is active unless i/n < start or (i+1)/n > end. */
export function controlActive(step: number, totalSteps: number, start: number, end: number): boolean {
  return !(step / totalSteps < start || (step + 1) / totalSteps > end);
}
