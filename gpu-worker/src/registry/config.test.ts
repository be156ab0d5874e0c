import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig, readModelConfig } from './config.ts';

describe('model config', () => {
  it('resolves relative paths against the file, accepts a bare path per head and fills defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contour-config-'));
    const file = join(dir, 'models.json');
    await writeFile(
      file,
      JSON.stringify({
        base: { path: 'sd15' },
        heads: { canny: 'heads/canny', depth: { path: '/abs/depth.safetensors' } },
      }),
    );
    const config = await readModelConfig(file);
    expect(config.base).toEqual({
      name: 'stable-diffusion-v1-5',
      path: join(dir, 'sd15'),
      layout: 'diffusers',
    });
    expect(config.heads.canny?.path).toBe(join(dir, 'heads/canny'));
    expect(config.heads.depth?.path).toBe('/abs/depth.safetensors');
    expect(config.memory_budget_mb).toBe(4096);
  });

  it('names the field at fault', () => {
    expect(() => parseModelConfig({ base: { path: 'x' }, heads: { cany: 'h' } }, '/')).toThrow(/heads/);
    expect(() => parseModelConfig({ base: { path: 'x', layout: 'ckpt' } }, '/')).toThrow(/base\.layout/);
    expect(() => parseModelConfig({}, '/')).toThrow(
      expect.objectContaining({ code: 'model_config_invalid' }),
    );
  });

  it('reports a missing or non-JSON file clearly', async () => {
    await expect(readModelConfig('/nonexistent/models.json')).rejects.toThrow(/cannot read model config/);
    const dir = await mkdtemp(join(tmpdir(), 'contour-config-'));
    await writeFile(join(dir, 'bad.json'), '{');
    await expect(readModelConfig(join(dir, 'bad.json'))).rejects.toThrow(/not JSON/);
  });
});
