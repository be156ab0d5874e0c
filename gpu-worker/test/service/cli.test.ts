import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeImage } from '@contour/shared/preprocess';
import { beforeAll, describe, expect, it } from 'vitest';
import { drawingPng, REPO_ROOT } from './helpers.ts';

let dir: string;

function cli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['gpu-worker/src/cli/bin.mjs', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, CONTOUR_MODEL_CONFIG: '' },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.on('exit', (code) => resolve({ code, output }));
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'contour-cli-'));
  await writeFile(join(dir, 'drawing.png'), drawingPng(320));
});

describe('contour-worker CLI', () => {
  it('preprocess writes the canny map at the requested size', async () => {
    const out = join(dir, 'map.png');
    const result = await cli([
      'preprocess',
      '--type',
      'canny',
      '--image',
      join(dir, 'drawing.png'),
      '--out',
      out,
      '--width',
      '256',
      '--height',
      '192',
    ]);
    expect(result.code, result.output).toBe(0);
    const map = await decodeImage(new Uint8Array(await readFile(out)));
    expect([map.width, map.height]).toEqual([256, 192]);
    expect(new Set(map.data)).toEqual(new Set([0, 255]));
  });

  it('generate writes PNGs with the built-in model and says so', async () => {
    const out = join(dir, 'out.png');
    const result = await cli([
      'generate',
      '--prompt',
      'a ring',
      '--control',
      `canny=${join(dir, 'drawing.png')}`,
      '--width',
      '256',
      '--height',
      '256',
      '--steps',
      '2',
      '--scheduler',
      'dpmpp_2m_karras',
      '--num-images',
      '2',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('built-in model');
    for (const path of [out, join(dir, 'out-1.png')]) {
      const image = await decodeImage(new Uint8Array(await readFile(path)));
      expect([image.width, image.height]).toEqual([256, 256]);
    }
  });

  it('exits 2 with the usage on bad input', async () => {
    const result = await cli(['generate', '--prompt', 'x', '--control', `nope=${join(dir, 'drawing.png')}`]);
    expect(result.code).toBe(2);
    expect(result.output).toContain('unknown control type "nope"');
    expect(result.output).toContain('contour-worker <command>');
    const sampler = await cli([
      'generate',
      '--prompt',
      'x',
      '--control',
      'canny=x.png',
      '--scheduler',
      'plms',
    ]);
    expect(sampler.code).toBe(2);
    expect(sampler.output).toContain('--scheduler must be one of ddim, unipc');
  });
});
