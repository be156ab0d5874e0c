import { describe, expect, it } from 'vitest';
import { circleSample } from './dataset.ts';
import { edgeF1, heldOutConditions, nearestColour, scoreGeneration } from './evaluate.ts';
import { chanceControlF1 } from './evaluate-cli.ts';

function mask(width: number, height: number, points: [number, number][]): Uint8Array {
  const out = new Uint8Array(width * height);
  for (const [x, y] of points) out[y * width + x] = 255;
  return out;
}

describe('fidelity metrics', () => {
  it('edge F1 tolerates 2 pixels and no more', () => {
    const line = (x: number) => Array.from({ length: 10 }, (_, y) => [x, y] as [number, number]);
    const reference = mask(12, 10, line(3));
    expect(edgeF1(mask(12, 10, line(3)), reference, 12, 10).f1).toBe(1);
    expect(edgeF1(mask(12, 10, line(5)), reference, 12, 10).f1).toBe(1);
    expect(edgeF1(mask(12, 10, line(6)), reference, 12, 10).f1).toBe(0);
    const half = edgeF1(mask(12, 10, [...line(3), ...line(9)]), reference, 12, 10);
    expect(half.precision).toBe(0.5);
    expect(half.recall).toBe(1);
    expect(half.f1).toBeCloseTo(2 / 3, 10);
    expect(edgeF1(new Uint8Array(120), reference, 12, 10).f1).toBe(0);
  });

  it('names the nearest colour', () => {
    expect(nearestColour([250, 10, 0])).toBe('red');
    expect(nearestColour([200, 200, 60])).toBe('yellow');
    expect(nearestColour([0, 0, 0])).toBe('black');
  });

  it('scores a dataset image against its own condition near 1, and against another near chance', () => {
    const conditions = heldOutConditions(6, 64);
    for (const condition of conditions) {
      const own = scoreGeneration(condition.target, condition);
      expect(own.f1).toBeGreaterThan(0.9);
      expect(own.promptOk).toBe(true);
    }
    const chance = chanceControlF1(16);
    expect(chance).toBeLessThan(0.35);
    expect(chance).toBeGreaterThan(0);
  });

  it('held-out conditions are fixed and disjoint from the training seed', () => {
    const [first] = heldOutConditions(1, 64);
    expect(first!.prompt).toBe(heldOutConditions(1, 64)[0]!.prompt);
    expect(JSON.stringify(first!.spec)).not.toBe(JSON.stringify(circleSample(1, 0, 64).spec));
  });
});
