import type * as tf from '@tensorflow/tfjs';
import { ddimSchedule } from './ddim.ts';
import type { Sampler } from './sampler.ts';

/** The original DDIM ({@link ddimSchedule}) behind the {@link Sampler} interface; noise only when eta > 0. */
export function ddimSampler(steps: number, eta: number): Sampler {
  const plan = ddimSchedule(steps, eta);
  return {
    name: 'ddim',
    timesteps: plan.map((c) => c.timestep),
    initNoiseSigma: 1,
    inputScale: () => 1,
    needsNoise: (step) => plan[step]!.sigma > 0,
    step(step, eps, x, noise) {
      const c = plan[step]!;
      if (c.sigma > 0 && !noise) throw new Error('DDIM with eta > 0 needs noise');
      const predX0 = x.sub(eps.mul(c.sqrtOneMinusAlpha)).div(c.sqrtAlpha);
      const prev = predX0.mul(c.sqrtAlphaPrev).add(eps.mul(c.directionScale));
      return (noise && c.sigma > 0 ? prev.add(noise.mul(c.sigma)) : prev) as tf.Tensor4D;
    },
    dispose: () => {},
  };
}
