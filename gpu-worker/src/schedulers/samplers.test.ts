import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { relativeError } from '../engine/reference.ts';
import { SchedulerError } from './ddim.ts';
import { lcmTimesteps } from './lcm.ts';
import { actualSamplerSteps, createSampler, SAMPLER_NAMES, type SamplerName } from './sampler.ts';

/** diffusers' schedulers run on PyTorch CPU with SD1.5's config (see test/fixtures/schedulers/README.md). */
interface Run {
  timesteps: number[];
  sigmas: number[] | null;
  initNoiseSigma: number;
  xT: number[];
  noise: number[][] | null;
  latents: number[][];
}
const reference = JSON.parse(
  readFileSync(new URL('../../test/fixtures/schedulers/reference.json', import.meta.url), 'utf8'),
) as { shape: [number, number, number, number]; samplers: Record<SamplerName, Record<string, Run>> };

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** The fixed 'model' of the reference: 0.9 tanh(x) + 0.2 sin(0.013 t + 0.37 k), k the flat index. */
function fixedEps(x: tf.Tensor4D, t: number): tf.Tensor4D {
  const bias = Float32Array.from({ length: x.size }, (_, k) => 0.2 * Math.sin(0.013 * t + 0.37 * k));
  return x.tanh().mul(0.9).add(tf.tensor(bias, x.shape)) as tf.Tensor4D;
}

describe('samplers match diffusers (SD1.5 config) step by step', () => {
  for (const name of SAMPLER_NAMES) {
    for (const [steps, run] of Object.entries(reference.samplers[name])) {
      it(`${name}, ${steps} steps: timesteps, sigmas and the latents after every step within 1e-4`, () => {
        const sampler = createSampler(name, Number(steps));
        expect(sampler.timesteps).toEqual(run.timesteps);
        if (run.sigmas) expect(relativeError(sampler.sigmas!, run.sigmas)).toBeLessThan(1e-6);
        expect(sampler.initNoiseSigma).toBeCloseTo(run.initNoiseSigma, 5);
        let x = tf.tensor(run.xT, reference.shape).mul(sampler.initNoiseSigma) as tf.Tensor4D;
        const worst: number[] = [];
        try {
          sampler.timesteps.forEach((t, step) => {
            const next = tf.tidy(() => {
              const eps = fixedEps(x.mul(sampler.inputScale(step)) as tf.Tensor4D, t);
              const noise = sampler.needsNoise(step)
                ? (tf.tensor(run.noise![step]!, reference.shape) as tf.Tensor4D)
                : undefined;
              return sampler.step(step, eps, x, noise);
            });
            x.dispose();
            x = next;
            worst.push(relativeError(x.dataSync(), run.latents[step]!));
          });
        } finally {
          x.dispose();
          sampler.dispose();
        }
        expect(worst).toHaveLength(run.latents.length);
        expect(Math.max(...worst)).toBeLessThan(1e-4);
      });
    }
  }

  it('keeps no tensors after dispose', () => {
    const before = tf.memory().numTensors;
    for (const name of SAMPLER_NAMES) {
      const sampler = createSampler(name, 6);
      let x = tf.ones([1, 2, 2, 4]) as tf.Tensor4D;
      sampler.timesteps.forEach((t, step) => {
        const next = tf.tidy(() => sampler.step(step, fixedEps(x, t), x, tf.zeros(x.shape) as tf.Tensor4D));
        x.dispose();
        x = next;
      });
      x.dispose();
      sampler.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs the requested step count (DDIM keeps its original discretisation) and refuses bad counts', () => {
    expect(actualSamplerSteps('ddim', 30)).toBe(31);
    for (const name of SAMPLER_NAMES.filter((n) => n !== 'ddim'))
      expect(actualSamplerSteps(name, 30)).toBe(30);
    expect(lcmTimesteps(1)).toEqual([999]);
    expect(() => createSampler('lcm', 51)).toThrow(SchedulerError);
    expect(() => createSampler('unipc', 0)).toThrow(SchedulerError);
    expect(() => createSampler('euler_a', 2.5)).toThrow(SchedulerError);
  });
});
