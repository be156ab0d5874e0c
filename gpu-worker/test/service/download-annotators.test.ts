import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PREPROCESSORS } from '@contour/shared/contracts';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers.ts';

const DOWNLOAD_SCRIPT = join(REPO_ROOT, 'infra/download-weights.mjs');
const MANIFEST = join(REPO_ROOT, 'infra/weights-manifest.json');

type Run = { code: number | null; stdout: string; stderr: string };

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DOWNLOAD_SCRIPT, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, CONTOUR_ALLOW_UNPINNED: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** What the fake Hub serves at one path: the bytes, and what its HEAD announces (LFS sha256 and size). */
interface Served {
  body: Buffer;
  announce?: { sha256: string; size: number };
}

/** Serves `/<owner>/<repo>/resolve/main/<file>` like the Hub (HEAD: X-Linked-Etag / X-Linked-Size for LFS files). */
async function startFakeHub(files: Record<string, Served>) {
  const downloads: string[] = [];
  const server = createServer((req, res) => {
    const served = files[req.url ?? ''];
    if (req.url === '/') {
      res.writeHead(200).end();
      return;
    }
    if (!served) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string | number> = { 'content-length': served.body.length };
    if (served.announce) {
      headers['x-linked-etag'] = `"${served.announce.sha256}"`;
      headers['x-linked-size'] = served.announce.size;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, headers).end();
      return;
    }
    downloads.push(req.url!);
    res.writeHead(200, headers).end(served.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    downloads,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

const HED = Buffer.from('pretend ControlNetHED.pth bytes');
const MIDAS = Buffer.from('pretend dpt_hybrid bytes, a little longer');
const PIDI = Buffer.from('pretend table5_pidinet.pth');
const lfs = (body: Buffer) => ({ body, announce: { sha256: sha256(body), size: body.length } });

/** A manifest like the real one, with pins for the fake bytes; `unpinned` has no sha256. */
async function writeManifest(dir: string, overrides: Record<string, object> = {}) {
  const manifest = JSON.parse(await readFile(MANIFEST, 'utf8'));
  manifest.annotators.files = {
    'ControlNetHED.pth': { sha256: sha256(HED), size: HED.length },
    'dpt_hybrid-midas-501f0c75.pt': { sha256: sha256(MIDAS), size: MIDAS.length },
    'table5_pidinet.pth': { sha256: sha256(PIDI), size: PIDI.length },
    'unpinned.pth': {},
    ...overrides,
  };
  manifest.annotators.preprocessors = {
    softedge_hed: ['ControlNetHED.pth'],
    depth_midas: ['dpt_hybrid-midas-501f0c75.pt'],
    softedge_pidinet: ['table5_pidinet.pth'],
    fresh: ['unpinned.pth'],
  };
  const path = join(dir, 'manifest.json');
  await writeFile(path, JSON.stringify(manifest));
  return path;
}

const ANNOTATORS = '/lllyasviel/Annotators/resolve/main';

describe('infra/download-weights.mjs annotator checkpoints', () => {
  it('--preprocessors fetches only the files those preprocessors need into <out>/annotators, pinned', async () => {
    const hub = await startFakeHub({
      [`${ANNOTATORS}/ControlNetHED.pth`]: lfs(HED),
      [`${ANNOTATORS}/dpt_hybrid-midas-501f0c75.pt`]: lfs(MIDAS),
      [`${ANNOTATORS}/table5_pidinet.pth`]: lfs(PIDI),
    });
    const out = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    const manifest = await writeManifest(out);
    const args = ['--out', out, '--base-url', hub.url, '--manifest', manifest];
    const result = await run([...args, '--preprocessors', 'softedge_hed,depth_midas']);
    expect(result.stderr).not.toContain('download-weights:');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`CONTOUR_ANNOTATOR_DIR=${join(out, 'annotators')}`);
    // No SD 1.5 / ControlNet head requests, no models.json: only the two annotator files.
    expect(hub.downloads.sort()).toEqual([
      `${ANNOTATORS}/ControlNetHED.pth`,
      `${ANNOTATORS}/dpt_hybrid-midas-501f0c75.pt`,
    ]);
    expect(existsSync(join(out, 'models.json'))).toBe(false);
    expect((await readdir(join(out, 'annotators'))).sort()).toEqual([
      'ControlNetHED.pth',
      'dpt_hybrid-midas-501f0c75.pt',
    ]);
    expect((await readFile(join(out, 'annotators/ControlNetHED.pth'))).equals(HED)).toBe(true);
    const lock = JSON.parse(await readFile(join(out, 'weights.lock.json'), 'utf8'));
    expect(lock['lllyasviel/Annotators/ControlNetHED.pth']).toBe(sha256(HED));
    // --annotators by file name; files already in place are not downloaded again.
    const again = await run([...args, '--annotators', 'ControlNetHED.pth,table5_pidinet.pth']);
    expect(again.code).toBe(0);
    expect(hub.downloads.filter((d) => d.endsWith('ControlNetHED.pth'))).toHaveLength(1);
    expect(hub.downloads).toContain(`${ANNOTATORS}/table5_pidinet.pth`);
    await hub.close();
  });

  it('with --heads, fetches the heads and the annotator files and still writes models.json', async () => {
    const out = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    const manifest = JSON.parse(await readFile(await writeManifest(out), 'utf8'));
    manifest.base.files = [{ path: 'model_index.json' }];
    manifest.head_files = [{ path: 'config.json' }];
    const path = join(out, 'small-manifest.json');
    await writeFile(path, JSON.stringify(manifest));
    const json = { body: Buffer.from('{}') };
    // SD 1.5 and head files: small non-LFS files (trust on first use, as before).
    const hub = await startFakeHub({
      [`${ANNOTATORS}/ControlNetHED.pth`]: lfs(HED),
      '/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/model_index.json': json,
      '/lllyasviel/control_v11p_sd15_softedge/resolve/main/config.json': json,
    });
    const result = await run([
      ...['--out', out, '--base-url', hub.url, '--manifest', path],
      ...['--heads', 'softedge', '--preprocessors', 'softedge_hed'],
    ]);
    expect(result.stderr).not.toContain('download-weights:');
    expect(result.code).toBe(0);
    expect(existsSync(join(out, 'models.json'))).toBe(true);
    expect(existsSync(join(out, 'annotators/ControlNetHED.pth'))).toBe(true);
    await hub.close();
  });

  it('refuses bytes that do not match the pinned sha256, and deletes them', async () => {
    // The server announces nothing (like a plain mirror) and serves other bytes than pinned.
    const hub = await startFakeHub({
      [`${ANNOTATORS}/ControlNetHED.pth`]: { body: Buffer.from('tampered') },
    });
    const out = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    const manifest = await writeManifest(out);
    const result = await run([
      '--out',
      out,
      '--base-url',
      hub.url,
      '--manifest',
      manifest,
      '--annotators',
      'all',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ControlNetHED\.pth: sha256 mismatch .*the download was deleted/);
    expect(existsSync(join(out, 'annotators/ControlNetHED.pth'))).toBe(false);
    expect(existsSync(join(out, 'annotators/ControlNetHED.pth.part'))).toBe(false);
    await hub.close();
  });

  it('refuses before downloading when the Hub announces another sha256 or size than pinned', async () => {
    const other = Buffer.from('a newer upload of ControlNetHED.pth');
    const hub = await startFakeHub({ [`${ANNOTATORS}/ControlNetHED.pth`]: lfs(other) });
    const out = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    const manifest = await writeManifest(out);
    const args = [
      '--out',
      out,
      '--base-url',
      hub.url,
      '--manifest',
      manifest,
      '--preprocessors',
      'softedge_hed',
    ];
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `the server announces sha256 ${sha256(other)}, the manifest pins ${sha256(HED)}`,
    );
    expect(hub.downloads).toEqual([]);
    // Same sha256 announced (e.g. a stale pin of the size) but another size: refused too.
    const sized = await writeManifest(out, { 'ControlNetHED.pth': { sha256: sha256(other), size: 1 } });
    const bySize = await run([
      '--out',
      out,
      '--base-url',
      hub.url,
      '--manifest',
      sized,
      '--annotators',
      'ControlNetHED.pth',
    ]);
    expect(bySize.code).toBe(2);
    expect(bySize.stderr).toContain(`the server announces ${other.length} bytes, the manifest pins 1`);
    expect(hub.downloads).toEqual([]);
    await hub.close();
  });

  it('refuses an unpinned file unless allowed; allowed, it records the computed hash and enforces it later', async () => {
    const first = Buffer.from('first bytes of an unpinned file');
    const files: Record<string, Served> = { [`${ANNOTATORS}/unpinned.pth`]: { body: first } };
    const hub = await startFakeHub(files);
    const out = await mkdtemp(join(tmpdir(), 'contour-annotators-'));
    const manifest = await writeManifest(out);
    const args = ['--out', out, '--base-url', hub.url, '--manifest', manifest, '--preprocessors', 'fresh'];
    const refused = await run(args);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /unpinned\.pth: no sha256 is pinned .*--allow-unpinned .*CONTOUR_ALLOW_UNPINNED=1/,
    );
    expect(hub.downloads).toEqual([]);
    const allowed = await run(args, { CONTOUR_ALLOW_UNPINNED: '1' });
    expect(allowed.code).toBe(0);
    expect(allowed.stderr).toContain(
      `warning: lllyasviel/Annotators/unpinned.pth is not pinned; recorded the sha256 it has now: ${sha256(first)}`,
    );
    const lock = JSON.parse(await readFile(join(out, 'weights.lock.json'), 'utf8'));
    expect(lock['lllyasviel/Annotators/unpinned.pth']).toBe(sha256(first));
    // The server now serves other bytes: the recorded hash refuses them (the file on disk stays as it was).
    files[`${ANNOTATORS}/unpinned.pth`] = { body: Buffer.from('changed bytes') };
    await rm(join(out, 'annotators/unpinned.pth'));
    const changed = await run([...args, '--allow-unpinned']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/unpinned\.pth: sha256 mismatch .*expected [0-9a-f]{64}/);
    await hub.close();
  });
});

describe('infra/weights-manifest.json annotators', () => {
  it('pins every annotator checkpoint the ControlNet 1.1 preprocessors use (sha256 + size)', async () => {
    const manifest = JSON.parse(await readFile(MANIFEST, 'utf8'));
    const { repo, files, preprocessors } = manifest.annotators;
    expect(repo).toBe('lllyasviel/Annotators');
    for (const name of [
      'ControlNetHED.pth',
      'table5_pidinet.pth',
      'mlsd_large_512_fp32.pth',
      'sk_model.pth',
      'sk_model2.pth',
      'netG.pth',
      'body_pose_model.pth',
      'hand_pose_model.pth',
      'facenet.pth',
      'dpt_hybrid-midas-501f0c75.pt',
      'scannet.pt',
      'upernet_global_small.pth',
      'midas_v21_small_256.pt',
    ]) {
      expect(files[name]?.sha256, name).toMatch(/^[0-9a-f]{64}$/);
      expect(files[name]?.size, name).toBeGreaterThan(1_000_000);
    }
    // Torch hub names carry their sha256 prefix; MiDaS's file names are such names.
    expect(files['dpt_hybrid-midas-501f0c75.pt'].sha256.startsWith('501f0c75')).toBe(true);
    expect(files['midas_v21_small_256.pt'].sha256.startsWith('70d6b9c8')).toBe(true);
    for (const [name, needed] of Object.entries(preprocessors as Record<string, string[]>)) {
      expect(needed.length, name).toBeGreaterThan(0);
      for (const file of needed) expect(files[file], `${name}: ${file}`).toBeDefined();
    }
    // The download map is the API's preprocessor catalogue, file for file: one source for names and weights.
    const network = Object.entries(PREPROCESSORS).filter(([, info]) => info.stage === 'worker');
    expect(Object.keys(preprocessors).sort()).toEqual(network.map(([name]) => name).sort());
    for (const [name, info] of network) expect(preprocessors[name], name).toEqual([...info.weights]);
  });
});
