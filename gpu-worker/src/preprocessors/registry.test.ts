import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PREPROCESSORS, type PreprocessorName } from '@contour/shared/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tfModelEngine } from '../engine/model-engine.ts';
import { PREPROCESSOR_DEFINITIONS } from './index.ts';
import { PreprocessorRegistry, PreprocessorUnavailableError } from './registry.ts';
import type { AnnotatorModel, PreprocessorDefinition } from './types.ts';

describe('the worker build and the API catalogue agree', () => {
  it('every definition is a network preprocessor of the catalogue, with the catalogue weight files', () => {
    for (const definition of PREPROCESSOR_DEFINITIONS) {
      const info = PREPROCESSORS[definition.name as PreprocessorName];
      expect(info, definition.name).toBeDefined();
      expect(info.stage, definition.name).toBe('worker');
      expect([...(definition.model?.files ?? [])].sort(), definition.name).toEqual([...info.weights].sort());
    }
  });
});

/** A fake annotator model family: counts loads and disposals, takes `bytes` of budget. */
function family(key: string, bytes: number, log: string[]): PreprocessorDefinition {
  return {
    name: `${key}_pre`,
    model: {
      key,
      files: [`${key}.pth`],
      async load(paths) {
        log.push(`load ${key} ${Object.values(paths)[0]?.endsWith(`${key}.pth`)}`);
        const model: AnnotatorModel = { bytes, networks: [], dispose: () => log.push(`dispose ${key}`) };
        return model;
      },
    },
    async run({ image }) {
      return { map: image };
    },
  };
}

describe('PreprocessorRegistry', () => {
  let dir: string;
  const image = { width: 2, height: 2, channels: 3 as const, data: new Uint8Array(12) };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    for (const key of ['a', 'b', 'c']) await writeFile(join(dir, `${key}.pth`), 'x');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads a model once, keeps it between runs and evicts the least recently used over the budget', async () => {
    const log: string[] = [];
    const registry = new PreprocessorRegistry({
      definitions: [family('a', 40, log), family('b', 40, log), family('c', 40, log)],
      annotatorDir: dir,
      budgetBytes: 80,
      engine: tfModelEngine,
    });
    await registry.run('a_pre', image, {});
    await registry.run('a_pre', image, {});
    await registry.run('b_pre', image, {});
    expect(log).toEqual(['load a true', 'load b true']);
    await registry.run('a_pre', image, {}); // a is now the most recent
    await registry.run('c_pre', image, {});
    expect(log).toEqual(['load a true', 'load b true', 'load c true', 'dispose b']);
    expect(registry.status().map((s) => [s.name, s.loaded])).toEqual([
      ['a_pre', true],
      ['b_pre', false],
      ['c_pre', true],
    ]);
    await registry.dispose();
  });

  it('names the missing file and the download command, and never loads', async () => {
    const log: string[] = [];
    const registry = new PreprocessorRegistry({
      definitions: [family('missing', 1, log)],
      annotatorDir: dir,
      budgetBytes: 1,
      engine: tfModelEngine,
    });
    const error = await registry.run('missing_pre', image, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreprocessorUnavailableError);
    expect((error as Error).message).toContain('missing.pth');
    expect((error as Error).message).toContain('--preprocessors missing_pre');
    expect(registry.status()[0]).toMatchObject({ available: false, missing: ['missing.pth'] });
    expect(log).toEqual([]);
    const unknown = await registry.run('nope', image, {}).catch((e: unknown) => e);
    expect((unknown as PreprocessorUnavailableError).code).toBe('model_not_available');
  });
});
