import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { BUILTIN_CONTROLNET_CONFIG } from '../builtin/model.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { RegistryError } from './errors.ts';
import { createBuiltinRegistry, type ModelRegistry, paramBytes } from './registry.ts';

const HEAD_BYTES = paramBytes(new ControlNetModel(BUILTIN_CONTROLNET_CONFIG).params);
let registry: ModelRegistry;

beforeAll(async () => {
  await initBackend({ force: 'cpu', log: () => {} });
  // Room for two and a half heads.
  registry = await createBuiltinRegistry({
    model: 'random',
    budgetBytes: HEAD_BYTES * 2.5,
    heads: ['canny', 'scribble', 'tile'],
  });
});
afterAll(() => registry?.dispose());

describe('ModelRegistry', () => {
  it('names the missing head', async () => {
    expect(registry.missingHead(['canny', 'depth'])).toBe('depth');
    const error = await registry.acquire(['depth']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'model_not_available', head: 'depth' });
    expect((error as Error).message).toContain('"depth"');
  });

  it('loads heads lazily, once, and evicts the least recently used beyond the budget', async () => {
    expect(registry.stats.loadedHeads).toEqual([]);
    const [a, b] = await Promise.all([registry.acquire(['canny']), registry.acquire(['canny'])]);
    expect(a.heads.get('canny')).toBe(b.heads.get('canny'));
    expect(registry.stats.loads).toBe(1);
    a.release();
    b.release();
    (await registry.acquire(['scribble'])).release();
    (await registry.acquire(['canny'])).release(); // canny is now the most recently used
    (await registry.acquire(['tile'])).release();
    expect(registry.stats.loadedHeads).toEqual(['canny', 'tile']);
    expect(registry.stats.evictions).toBe(1);
    expect(registry.stats.headBytes).toBe(2 * HEAD_BYTES);
  });

  it('never evicts heads a job holds, and catches up once they are released', async () => {
    const lease = await registry.acquire(['canny', 'scribble', 'tile']);
    expect(registry.stats.loadedHeads.sort()).toEqual(['canny', 'scribble', 'tile']);
    expect(registry.stats.headBytes).toBeGreaterThan(registry.budgetBytes);
    lease.release();
    expect(registry.stats.loadedHeads).toHaveLength(2);
    expect(registry.stats.headBytes).toBeLessThanOrEqual(registry.budgetBytes);
  });
});

describe('ModelRegistry bound to an engine that holds its own copy of the weights', () => {
  it('counts each head at every copy held and has the engine free an evicted head', async () => {
    const bound = await createBuiltinRegistry({
      model: 'random',
      budgetBytes: HEAD_BYTES * 2.5,
      heads: ['canny', 'scribble', 'tile'],
    });
    try {
      const released: object[] = [];
      (await bound.acquire(['canny'])).release();
      (await bound.acquire(['scribble'])).release();
      expect(bound.stats.loadedHeads).toEqual(['canny', 'scribble']);
      const canny = (await bound.acquire(['canny'])).heads.get('canny')!;
      // ONNX Runtime's sessions keep a second copy: two heads are 4 head-sizes, over the 2.5 budget.
      bound.bindEngine({ weightCopies: 2, releaseModel: async (model) => void released.push(model) });
      expect(bound.stats.loadedHeads).toEqual(['canny']);
      expect(bound.stats.headBytes).toBe(2 * HEAD_BYTES);
      expect(released).toHaveLength(1);
      expect(released[0]).not.toBe(canny);
      expect(bound.stats.evictions).toBe(1);
    } finally {
      bound.dispose();
    }
  });
});

describe('createBuiltinRegistry (the default trained model)', () => {
  it('serves the trained canny head, and an untrained head named as such for another asked-for type', async () => {
    const circles = await createBuiltinRegistry({ heads: ['canny', 'scribble'] });
    try {
      expect(circles.base.name).toBe('contour-circles-tiny');
      expect(circles.base.nativeResolution).toBe(64);
      expect(circles.headName('canny')).toBe('contour-circles-tiny/controlnet-canny');
      expect(circles.headName('scribble')).toBe('contour-circles-tiny/untrained-scribble');
      const lease = await circles.acquire(['canny', 'scribble']);
      // The untrained head's joins are zero: its residuals cannot move the base.
      const untrained = lease.heads.get('scribble')!;
      const trained = lease.heads.get('canny')!;
      const zeroOut = untrained.params.get('middle_block_out.0.weight');
      expect(Math.max(...(await zeroOut.abs().data()))).toBe(0);
      expect(
        Math.max(...(await trained.params.get('middle_block_out.0.weight').abs().data())),
      ).toBeGreaterThan(0);
      lease.release();
    } finally {
      circles.dispose();
    }
    const byDefault = await createBuiltinRegistry();
    expect(byDefault.servedTypes).toEqual(['canny']);
    byDefault.dispose();
  });
});
