import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_TYPE_INFO, CONTROL_TYPES } from '@contour/shared/contracts';
import { type Copy, DockerfileParser } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/registry/config.ts';
import { REPO_ROOT } from './helpers.ts';

const DOCKERFILE = join(REPO_ROOT, 'infra/Dockerfile');
const DOWNLOAD_SCRIPT = join(REPO_ROOT, 'infra/download-weights.mjs');

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DOWNLOAD_SCRIPT, ...args], { cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

describe('infra/Dockerfile', () => {
  it('parses, copies only paths that exist, and runs as a non-root user with a healthcheck', async () => {
    const dockerfile = DockerfileParser.parse(await readFile(DOCKERFILE, 'utf8'));
    const instructions = dockerfile.getInstructions();
    const keywords = instructions.map((i) => i.getKeyword());
    expect(keywords.filter((k) => k === 'FROM').length).toBeGreaterThanOrEqual(2);
    const args = Object.fromEntries(
      instructions
        .filter((i) => i.getKeyword() === 'ARG')
        .map((i) => i.getArgumentsContent()!.split('=') as [string, string]),
    );
    // tfjs-node-gpu 4.x needs CUDA 11.x with cuDNN 8.
    expect(args['CUDA_IMAGE']).toMatch(/^nvidia\/cuda:11\.\d+\.\d+-cudnn8-runtime/);
    for (const copy of instructions.filter((i) => i.getKeyword() === 'COPY')) {
      // Copies between stages are checked by the build, not here.
      if ((copy as Copy).getFlags().some((flag) => flag.getName() === 'from')) continue;
      const sources = copy
        .getArguments()
        .map((a) => a.getValue())
        .slice(0, -1);
      for (const source of sources) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
    }
    const lastUser = instructions
      .filter((i) => i.getKeyword() === 'USER')
      .at(-1)
      ?.getArgumentsContent();
    expect(lastUser).toBeDefined();
    expect(['root', '0']).not.toContain(lastUser);
    expect(keywords).toContain('HEALTHCHECK');
    const env = instructions
      .filter((i) => i.getKeyword() === 'ENV')
      .map((i) => i.getArgumentsContent())
      .join(' ');
    expect(env).toContain('TF_FORCE_GPU_ALLOW_GROWTH=true');
    expect(env).toContain('CUDA_CACHE_PATH=');
    const cmd = instructions.find((i) => i.getKeyword() === 'CMD')!.getArgumentsContent()!;
    expect(existsSync(join(REPO_ROOT, JSON.parse(cmd).at(-1)))).toBe(true);
  });
});

describe('infra/Dockerfile ONNX Runtime target', () => {
  it('has a runtime-onnx stage on CUDA 12 + cuDNN 9 that installs the CUDA provider at build time', async () => {
    const text = await readFile(DOCKERFILE, 'utf8');
    const instructions = DockerfileParser.parse(text).getInstructions();
    const froms = instructions.filter((i) => i.getKeyword() === 'FROM').map((i) => i.getArgumentsContent()!);
    expect(froms).toContainEqual(expect.stringMatching(/^\$\{CUDA12_IMAGE\} AS runtime-onnx$/));
    // The default target (last stage) stays the tfjs-node-gpu image.
    expect(froms.at(-1)).toMatch(/^\$\{CUDA_IMAGE\} AS runtime$/);
    const args = instructions.filter((i) => i.getKeyword() === 'ARG').map((i) => i.getArgumentsContent()!);
    // nvidia/cuda 12.x "cudnn" images carry cuDNN 9, which ORT's CUDA 12 provider needs.
    expect(args).toContainEqual(
      expect.stringMatching(/^CUDA12_IMAGE=nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime/),
    );
    expect(text).toMatch(/script\/install --onnxruntime-node-install=cuda12/);
    expect(text).toContain('libonnxruntime_providers_cuda.so');
    const onnxStage = text.slice(text.indexOf('AS runtime-onnx'), text.indexOf('AS runtime\n'));
    expect(onnxStage).toContain('CONTOUR_ENGINE=auto');
    expect(onnxStage).toContain('CONTOUR_ONNX_CACHE_DIR=');
    expect(onnxStage).toMatch(/COPY --from=deps-onnx/);
    expect(onnxStage).toMatch(/USER contour/);
  });
});

describe('infra/download-weights.mjs', () => {
  it('fails fast with a clear message when the Hub cannot be reached', async () => {
    for (const baseUrl of ['http://127.0.0.1:9', await closedPortUrl()]) {
      const out = await mkdtemp(join(tmpdir(), 'contour-weights-'));
      const result = await run(['--out', out, '--base-url', baseUrl, '--timeout-ms', '3000']);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/cannot reach .*needs network access to Hugging Face/);
      expect(result.ms).toBeLessThan(15_000);
    }
  });

  it('has a head for every control type, matching the ControlNet 1.1 checkpoint names', async () => {
    const manifest = JSON.parse(await readFile(join(REPO_ROOT, 'infra/weights-manifest.json'), 'utf8'));
    expect(Object.keys(manifest.heads).sort()).toEqual([...CONTROL_TYPES].sort());
    for (const type of CONTROL_TYPES) {
      expect(manifest.heads[type]).toBe(`lllyasviel/${CONTROL_TYPE_INFO[type].checkpoint}`);
    }
  });

  it('downloads from a Hub-like server, verifies sha256 and writes models.json; a second run downloads nothing', async () => {
    const weights = new TextEncoder().encode('pretend safetensors bytes');
    const hub = await startFakeHub(weights, { corrupt: false });
    const out = await mkdtemp(join(tmpdir(), 'contour-weights-'));
    const result = await run(['--out', out, '--base-url', hub.url, '--heads', 'canny,hed,softedge']);
    expect(result.stderr).not.toContain('download-weights:');
    expect(result.stderr).toContain('downloading base/unet/diffusion_pytorch_model.safetensors');
    expect(result.code).toBe(0);
    const config = parseModelConfig(JSON.parse(await readFile(join(out, 'models.json'), 'utf8')), out);
    expect(config.base.path).toBe(join(out, 'base'));
    expect(config.heads.canny?.path).toBe(join(out, 'controlnet/control_v11p_sd15_canny'));
    expect(config.heads.hed?.path).toBe(config.heads.softedge?.path);
    const unet = await readFile(join(out, 'base/unet/diffusion_pytorch_model.safetensors'));
    expect(Buffer.from(unet).equals(Buffer.from(weights))).toBe(true);
    const lock = JSON.parse(await readFile(join(out, 'weights.lock.json'), 'utf8'));
    expect(lock['stable-diffusion-v1-5/stable-diffusion-v1-5/unet/diffusion_pytorch_model.safetensors']).toBe(
      hub.sha256,
    );
    // A second run finds every file in place and downloads nothing.
    const before = hub.downloads();
    expect((await run(['--out', out, '--base-url', hub.url, '--heads', 'canny'])).code).toBe(0);
    expect(hub.downloads()).toBe(before);
    await hub.close();
  });

  it('refuses a file whose bytes do not match the sha256 the Hub states', async () => {
    const hub = await startFakeHub(new TextEncoder().encode('real bytes'), { corrupt: true });
    const out = await mkdtemp(join(tmpdir(), 'contour-weights-'));
    const result = await run(['--out', out, '--base-url', hub.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/sha256 mismatch/);
    expect(existsSync(join(out, 'models.json'))).toBe(false);
    await hub.close();
  });
});

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/**
 * Serves `/<owner>/<repo>/resolve/main/<path>` like the Hub: `.safetensors` files are "LFS" files whose HEAD
 * carries X-Linked-Etag (their sha256); `corrupt` serves other bytes than the hash announces.
 */
async function startFakeHub(weights: Uint8Array, options: { corrupt: boolean }) {
  const sha256 = createHash('sha256').update(weights).digest('hex');
  let downloads = 0;
  const server = createServer((req, res) => {
    const lfs = req.url?.endsWith('.safetensors');
    const body = lfs ? (options.corrupt ? Buffer.from('tampered') : Buffer.from(weights)) : Buffer.from('{}');
    const headers: Record<string, string | number> = { 'content-length': body.length };
    if (lfs) headers['x-linked-etag'] = `"${sha256}"`;
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    if (req.url !== '/') downloads++;
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    sha256,
    downloads: () => downloads,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
