/** Euler ancestral as diffusers' EulerAncestralDiscreteScheduler with SD1.5's config ('leading', offset 1). */
import type * as tf from '@tensorflow/tfjs';
import type { Sampler } from './sampler.ts';
import { checkSteps, leadingTimesteps, trainSigmas } from './schedule.ts';

/** The Euler ancestral sampler: an Euler step down to sigma_down, then fresh noise of sigma_up. */
export function eulerAncestralSampler(steps: number): Sampler {
  checkSteps(steps);
  const timesteps = leadingTimesteps(steps, false);
  const train = trainSigmas();
  const sigmas = [...timesteps.map((t) => train[t]!), 0].map(Math.fround);
  const sigmaMax = Math.max(...sigmas);
  return {
    name: 'euler_a',
    timesteps,
    sigmas,
    // 'leading' spacing: sqrt(sigma_max^2 + 1), the std of x at the first timestep in the VE form.
    initNoiseSigma: Math.sqrt(sigmaMax * sigmaMax + 1),
    inputScale: (step) => 1 / Math.sqrt(sigmas[step]! ** 2 + 1),
    needsNoise: () => true,
    step(step, eps, x, noise) {
      if (!noise) throw new Error('euler_a needs noise at every step');
      const from = sigmas[step]!;
      const to = sigmas[step + 1]!;
      const sigmaUp = Math.sqrt((to * to * (from * from - to * to)) / (from * from));
      const sigmaDown = Math.sqrt(to * to - sigmaUp * sigmaUp);
      // derivative (x - x0) / sigma is eps for epsilon prediction.
      return x.add(eps.mul(sigmaDown - from)).add(noise.mul(sigmaUp)) as tf.Tensor4D;
    },
    dispose: () => {},
  };
}
