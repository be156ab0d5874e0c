import { describe, expect, it } from 'vitest';
import {
  alphasCumprod,
  controlActive,
  controlScales,
  ddimSchedule,
  ddimTimesteps,
  SchedulerError,
} from './ddim.ts';

describe('DDIM schedule as the original', () => {
  it("uses the 'uniform' timesteps with the +1 offset", () => {
    expect(ddimTimesteps(20)).toEqual(Array.from({ length: 20 }, (_, i) => 1 + 50 * i));
    expect(ddimTimesteps(4)).toEqual([1, 251, 501, 751]);
    expect(ddimTimesteps(5)).toEqual([1, 201, 401, 601, 801]);
    // 1000 // 30 = 33 does not divide 1000: the original runs ceil(1000 / 33) = 31 steps.
    expect(ddimTimesteps(30)).toHaveLength(31);
  });

  it('drops timesteps that would reach 1000 (our rule where the original breaks)', () => {
    expect(ddimTimesteps(3)).toEqual([1, 334, 667]);
    expect(ddimTimesteps(1000)).toHaveLength(999);
    expect(() => ddimTimesteps(0)).toThrow(SchedulerError);
    expect(() => ddimTimesteps(2.5)).toThrow(SchedulerError);
  });

  it('has the scaled-linear alphas_cumprod of SD1.5 and abar[0] as the last previous alpha', () => {
    const abar = alphasCumprod();
    // Held as float32, as LatentDiffusion registers the buffer.
    expect(abar[0]).toBe(Math.fround(1 - 0.00085));
    expect(abar[1]).toBeCloseTo(
      (1 - 0.00085) * (1 - (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999) ** 2),
      7,
    );
    const plan = ddimSchedule(4, 0);
    expect(plan.map((p) => p.timestep)).toEqual([751, 501, 251, 1]);
    expect(plan[3]!.sqrtAlphaPrev).toBeCloseTo(Math.sqrt(abar[0]!), 7);
    expect(plan[0]!.sqrtAlphaPrev).toBeCloseTo(Math.sqrt(abar[501]!), 7);
    expect(plan.every((p) => p.sigma === 0)).toBe(true);
    expect(ddimSchedule(4, 1).every((p) => p.sigma > 0)).toBe(true);
  });

  it('scales residuals for guess mode and gates units by start/end', () => {
    expect(controlScales(0.7, false)).toEqual(Array(13).fill(0.7));
    const guess = controlScales(1, true);
    expect(guess[12]).toBe(1);
    expect(guess[0]).toBeCloseTo(0.825 ** 12, 12);
    expect([0, 1, 2, 3].map((i) => controlActive(i, 4, 0.25, 0.75))).toEqual([false, true, true, false]);
  });
});
