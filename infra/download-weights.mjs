#!/usr/bin/env node
// Downloads Stable Diffusion 1.5 (diffusers layout) and the ControlNet 1.1 heads from Hugging Face into a folder
// the GPU worker mounts, verifies every file's sha256, and writes the worker's model config (models.json).
//
//   node infra/download-weights.mjs --out /srv/contour/weights [--heads canny,depth | all] [--fp16]
//
// Options: --base-url (default https://huggingface.co, or $HF_ENDPOINT), --timeout-ms (connect check, 10000).
// $HF_TOKEN is sent as a bearer token when set. Interrupted downloads resume from their .part file.
// Hashes: a pinned value in weights-manifest.json wins; else the Hub's LFS sha256 (X-Linked-Etag) is used and
// recorded in <out>/weights.lock.json, and later runs refuse a file whose hash differs from the lock.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

const MANIFEST_PATH = new URL('./weights-manifest.json', import.meta.url);

/** An error shown to the operator as one clear line (exit code 2). */
class DownloadError extends Error {}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      heads: { type: 'string', default: 'canny' },
      fp16: { type: 'boolean', default: false },
      'base-url': { type: 'string', default: process.env.HF_ENDPOINT || 'https://huggingface.co' },
      'timeout-ms': { type: 'string', default: '10000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true };
  if (!values.out) throw new DownloadError('--out <folder> is required');
  return {
    out: resolve(values.out),
    heads: values.heads,
    fp16: values.fp16,
    baseUrl: values['base-url'].replace(/\/+$/, ''),
    timeoutMs: Number(values['timeout-ms']),
  };
}

function authHeaders() {
  return process.env.HF_TOKEN ? { authorization: `Bearer ${process.env.HF_TOKEN}` } : {};
}

/** Fails fast, with the reason, when the Hub cannot be reached at all (offline hosts, firewalls). */
async function checkReachable(baseUrl, timeoutMs) {
  try {
    await fetch(baseUrl, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), headers: authHeaders() });
  } catch (error) {
    const cause = error?.cause?.code ?? error?.cause?.message ?? error?.name ?? String(error);
    throw new DownloadError(
      `cannot reach ${baseUrl} (${cause}). Downloading the weights needs network access to Hugging Face: ` +
        'run this where the Hub is reachable (or set --base-url / HF_ENDPOINT to a mirror), or copy the ' +
        'weights into the folder by hand and write models.json as described in infra/README.md.',
    );
  }
}

/** The files to fetch: [{ repo, remote, local, pinned }]. */
function plan(manifest, options) {
  const wanted =
    options.heads === 'all' ? Object.keys(manifest.heads) : options.heads.split(',').map((h) => h.trim());
  for (const head of wanted) {
    if (!manifest.heads[head]) {
      throw new DownloadError(
        `unknown head "${head}" (known: ${Object.keys(manifest.heads).join(', ')}, all)`,
      );
    }
  }
  const remoteOf = (file) => (options.fp16 && file.fp16 ? file.fp16 : file.path);
  const files = manifest.base.files.map((file) => ({
    repo: manifest.base.repo,
    remote: remoteOf(file),
    local: join('base', file.path),
  }));
  const heads = {};
  for (const head of wanted) {
    const repo = manifest.heads[head];
    const folder = join('controlnet', repo.split('/')[1]);
    heads[head] = folder;
    if (files.some((f) => f.local.startsWith(`${folder}/`))) continue; // hed and softedge share a head
    for (const file of manifest.head_files)
      files.push({ repo, remote: remoteOf(file), local: join(folder, file.path) });
  }
  for (const file of files) file.pinned = manifest.pinned_sha256?.[`${file.repo}/${file.remote}`];
  return { files, heads };
}

async function sha256OfFile(path) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** HEAD of the resolve URL: the LFS sha256 and size when the file is in LFS (weights), nothing for small files. */
async function remoteInfo(url) {
  const response = await fetch(url, { method: 'HEAD', headers: authHeaders(), redirect: 'manual' });
  if (response.status === 401 || response.status === 403) {
    throw new DownloadError(`${url}: HTTP ${response.status} (gated or private: set HF_TOKEN)`);
  }
  if (response.status === 404) throw new DownloadError(`${url}: not found (HTTP 404)`);
  const etag = response.headers.get('x-linked-etag') ?? '';
  const sha256 = /^"?([0-9a-f]{64})"?$/.exec(etag)?.[1];
  const size = Number(
    response.headers.get('x-linked-size') ?? response.headers.get('content-length') ?? Number.NaN,
  );
  return { sha256, size: Number.isFinite(size) ? size : undefined };
}

/** Downloads `url` to `<target>.part`, resuming a previous partial download; returns the whole file's sha256. */
async function download(url, target, bars, label) {
  const part = `${target}.part`;
  const hash = createHash('sha256');
  let have = existsSync(part) ? (await stat(part)).size : 0;
  let response = await fetch(url, {
    headers: { ...authHeaders(), ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
  });
  if (have > 0 && response.status === 206) {
    // Resuming: the hash must cover the bytes already on disk.
    for await (const chunk of createReadStream(part)) hash.update(chunk);
  } else if (have > 0) {
    // The server ignored the range (or the part is stale): start over.
    await response.body?.cancel();
    have = 0;
    response = await fetch(url, { headers: authHeaders() });
  }
  if (!response.ok) throw new DownloadError(`${url}: HTTP ${response.status}`);
  const total = have + Number(response.headers.get('content-length') ?? 0);
  const bar = bars.create(total || 1, have, { file: label });
  const counter = new Transform({
    transform(chunk, _encoding, callback) {
      hash.update(chunk);
      bar.increment(chunk.length);
      callback(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(response.body),
    counter,
    createWriteStream(part, { flags: have > 0 ? 'a' : 'w' }),
  );
  return { digest: hash.digest('hex'), part };
}

/** Progress as plain lines when stderr is not a terminal (logs, CI): one line per file started and finished. */
function plainProgress() {
  return {
    create(total, start, { file }) {
      console.error(`downloading ${file} (${total} bytes${start ? `, resuming at ${start}` : ''})`);
      return { increment() {} };
    },
    log(line) {
      console.error(line.trimEnd());
    },
    stop() {},
  };
}

async function main(argv) {
  const options = parseOptions(argv);
  if (options.help) {
    console.log(
      'node infra/download-weights.mjs --out DIR [--heads canny,depth|all] [--fp16] [--base-url URL] [--timeout-ms N]',
    );
    return;
  }
  const manifest = JSON.parse(await readFile(MANIFEST_PATH, 'utf8'));
  const { files, heads } = plan(manifest, options);
  await checkReachable(options.baseUrl, options.timeoutMs);
  await mkdir(options.out, { recursive: true });
  const lockPath = join(options.out, 'weights.lock.json');
  const lock = existsSync(lockPath) ? JSON.parse(await readFile(lockPath, 'utf8')) : {};
  const bars = process.stderr.isTTY
    ? new cliProgress.MultiBar(
        {
          format: '{file} [{bar}] {percentage}% | {value}/{total} bytes | eta {eta_formatted}',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : plainProgress();
  try {
    for (const file of files) {
      const key = `${file.repo}/${file.remote}`;
      const target = join(options.out, file.local);
      const url = `${options.baseUrl}/${file.repo}/resolve/main/${file.remote}`;
      const info = await remoteInfo(url);
      const expected = file.pinned ?? lock[key] ?? info.sha256;
      if (lock[key] && info.sha256 && lock[key] !== info.sha256 && !file.pinned) {
        throw new DownloadError(
          `${key}: the Hub now serves sha256 ${info.sha256}, the lock says ${lock[key]}`,
        );
      }
      await mkdir(dirname(target), { recursive: true });
      if (existsSync(target) && expected && (await sha256OfFile(target)) === expected) {
        bars.log(`ok (already present) ${file.local}\n`);
        continue;
      }
      const { digest, part } = await download(url, target, bars, file.local);
      if (expected && digest !== expected) {
        await rm(part, { force: true });
        throw new DownloadError(
          `${key}: sha256 mismatch (got ${digest}, expected ${expected}); the download was deleted`,
        );
      }
      await rename(part, target);
      lock[key] = digest;
      await writeFile(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
    }
  } finally {
    bars.stop();
  }
  const config = {
    base: { name: manifest.base.name, path: 'base', layout: 'diffusers' },
    heads,
    memory_budget_mb: 4096,
  };
  await writeFile(join(options.out, 'models.json'), `${JSON.stringify(config, null, 2)}\n`);
  console.log(`weights ready in ${options.out}; model config: ${join(options.out, 'models.json')}`);
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof DownloadError) {
    console.error(`download-weights: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
