import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CIRCLE_COLOURS,
  circleSample,
  circleSpec,
  readPromptJsonDataset,
  renderCircle,
  writeCircleDataset,
} from './dataset.ts';

describe('circles dataset', () => {
  it('is deterministic by seed and index, and differs across seeds', () => {
    const a = circleSample(5, 17, 48);
    const b = circleSample(5, 17, 48);
    expect(a.prompt).toBe(b.prompt);
    expect(Buffer.from(a.target.data).equals(Buffer.from(b.target.data))).toBe(true);
    expect(Buffer.from(a.source.data).equals(Buffer.from(b.source.data))).toBe(true);
    const specs = new Set(Array.from({ length: 20 }, (_, i) => JSON.stringify(circleSpec(6, i, 48))));
    expect(specs.size).toBe(20);
    expect(JSON.stringify(circleSpec(7, 17, 48))).not.toBe(JSON.stringify(circleSpec(5, 17, 48)));
  });

  it('names the circle and background colours in the prompt and paints them', () => {
    for (let i = 0; i < 30; i++) {
      const { spec, prompt, target } = circleSample(3, i, 64);
      expect(prompt).toBe(`${spec.circle} circle with ${spec.background} background`);
      expect(spec.circle).not.toBe(spec.background);
      const at = (x: number, y: number) =>
        Array.from(target.data.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
      expect(at(Math.floor(spec.centerX), Math.floor(spec.centerY))).toEqual([
        ...CIRCLE_COLOURS[spec.circle],
      ]);
      expect(spec.centerX - spec.radius).toBeGreaterThan(0);
      expect(spec.centerX + spec.radius).toBeLessThan(64);
      expect(spec.centerY + spec.radius).toBeLessThan(64);
    }
  });

  it('draws the source as the outline of the filled circle, white on black', () => {
    const sample = renderCircle({
      size: 32,
      centerX: 15.2,
      centerY: 17.7,
      radius: 9.3,
      circle: 'red',
      background: 'blue',
    });
    const red = CIRCLE_COLOURS.red;
    const isInside = (x: number, y: number) =>
      x >= 0 && y >= 0 && x < 32 && y < 32 && sample.target.data[(y * 32 + x) * 3] === red[0];
    let outline = 0;
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        const p = (y * 32 + x) * 3;
        const value = sample.source.data[p]!;
        expect([0, 255]).toContain(value);
        expect(sample.source.data[p + 1]).toBe(value);
        const boundary =
          isInside(x, y) &&
          (!isInside(x - 1, y) || !isInside(x + 1, y) || !isInside(x, y - 1) || !isInside(x, y + 1));
        expect(value === 255, `pixel ${x},${y}`).toBe(boundary);
        if (boundary) {
          outline++;
          const distance = Math.hypot(x + 0.5 - 15.2, y + 0.5 - 17.7);
          expect(Math.abs(distance - 9.3)).toBeLessThan(1.5);
        }
      }
    }
    // A one-pixel ring around a radius-9.3 circle has roughly 4 * 2r / sqrt(2)... about 50 pixels.
    expect(outline).toBeGreaterThan(40);
    expect(outline).toBeLessThan(70);
  });

  it('writes and reads the tutorial prompt.json layout', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'circles-'));
    try {
      await writeCircleDataset(dir, { seed: 9, count: 3, size: 16 });
      const lines = (await readFile(join(dir, 'prompt.json'), 'utf8')).trim().split('\n');
      expect(JSON.parse(lines[1]!)).toEqual({
        source: 'source/1.png',
        target: 'target/1.png',
        prompt: circleSample(9, 1, 16).prompt,
      });
      const examples = await readPromptJsonDataset(dir);
      expect(examples).toHaveLength(3);
      const original = circleSample(9, 2, 16);
      expect(examples[2]!.prompt).toBe(original.prompt);
      expect(examples[2]!.target[0]).toBeCloseTo(original.target.data[0]! / 127.5 - 1, 6);
      expect(Math.max(...examples[2]!.source)).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
