#!/usr/bin/env node
// Downloads Stable Diffusion 1.5 (diffusers layout) and the ControlNet 1.1 heads from Hugging Face into a folder
// the GPU worker mounts, verifies every file's sha256, and writes the worker's model config (models.json); and the
// annotator checkpoints the neural preprocessors use (lllyasviel/Annotators) into <out>/annotators.
//
//   node infra/download-weights.mjs --out /srv/contour/weights [--heads canny,depth | all] [--fp16]
//   node infra/download-weights.mjs --out /srv/contour/weights --preprocessors softedge_hed,depth_midas | all
//   node infra/download-weights.mjs --out /srv/contour/weights --annotators ControlNetHED.pth,scannet.pt | all
//
// With --preprocessors / --annotators alone only annotator files are fetched (models.json is left as it is); add
// --heads to fetch both. Options: --base-url (default https://huggingface.co, or $HF_ENDPOINT), --timeout-ms
// (connect check, 10000), --manifest (another weights-manifest.json: mirrors, tests), --allow-unpinned.
// $HF_TOKEN is sent as a bearer token when set. Interrupted downloads resume from their .part file.
// Hashes: a pinned value in weights-manifest.json wins; else the Hub's LFS sha256 (X-Linked-Etag) is used and
// recorded in <out>/weights.lock.json, and later runs refuse a file whose hash differs from the lock. Annotator
// files must be pinned (sha256 + size): an unpinned one is refused unless --allow-unpinned or
// CONTOUR_ALLOW_UNPINNED=1, which records the hash it computed in the lock (enforced from then on).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

const MANIFEST_PATH = new URL('./weights-manifest.json', import.meta.url);
/** Folder under --out that holds the annotator checkpoints (the worker's CONTOUR_ANNOTATOR_DIR). */
const ANNOTATOR_FOLDER = 'annotators';

/** An error shown to the operator as one clear line (exit code 2). */
class DownloadError extends Error {}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      heads: { type: 'string' },
      preprocessors: { type: 'string' },
      annotators: { type: 'string' },
      'allow-unpinned': { type: 'boolean', default: false },
      manifest: { type: 'string' },
      fp16: { type: 'boolean', default: false },
      'base-url': { type: 'string', default: process.env.HF_ENDPOINT || 'https://huggingface.co' },
      'timeout-ms': { type: 'string', default: '10000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true };
  if (!values.out) throw new DownloadError('--out <folder> is required');
  const annotatorsOnly =
    values.heads === undefined && (values.preprocessors ?? values.annotators) !== undefined;
  return {
    out: resolve(values.out),
    // Without --heads: canny, unless only annotators were asked for.
    heads: annotatorsOnly ? undefined : (values.heads ?? 'canny'),
    preprocessors: values.preprocessors,
    annotators: values.annotators,
    allowUnpinned: values['allow-unpinned'] || process.env.CONTOUR_ALLOW_UNPINNED === '1',
    manifestPath: values.manifest ? resolve(values.manifest) : MANIFEST_PATH,
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

/** Splits a comma list; `all` selects every known name. Unknown names are refused with the known ones. */
function selectNames(list, known, what) {
  if (list.trim() === 'all') return known;
  const wanted = list
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of wanted) {
    if (!known.includes(name))
      throw new DownloadError(`unknown ${what} "${name}" (known: ${known.join(', ')}, all)`);
  }
  return wanted;
}

/** Annotator files for --preprocessors / --annotators: [{ key, url, local, pinned, size, strict }]. */
function planAnnotators(manifest, options) {
  const section = manifest.annotators ?? { files: {}, preprocessors: {} };
  const names = new Set();
  if (options.preprocessors !== undefined) {
    const known = Object.keys(section.preprocessors);
    for (const pre of selectNames(options.preprocessors, known, 'preprocessor'))
      for (const name of section.preprocessors[pre]) names.add(name);
  }
  if (options.annotators !== undefined) {
    for (const name of selectNames(options.annotators, Object.keys(section.files), 'annotator file'))
      names.add(name);
  }
  return [...names].map((name) => {
    const entry = section.files[name];
    if (!entry)
      throw new DownloadError(
        `weights manifest: preprocessor file "${name}" has no entry in annotators.files`,
      );
    // An absolute url (a file not hosted in the annotator repo) is fetched as is, not through --base-url.
    const remote = entry.url ?? `${options.baseUrl}/${section.repo}/resolve/main/${name}`;
    return {
      key: entry.url ?? `${section.repo}/${name}`,
      url: remote,
      local: join(ANNOTATOR_FOLDER, name),
      pinned: entry.sha256,
      size: entry.size,
      strict: true,
    };
  });
}

/** The files to fetch: [{ key, url, local, pinned, size?, strict? }], the heads for models.json (or none). */
function plan(manifest, options) {
  const files = [];
  let heads;
  if (options.heads !== undefined) {
    const wanted = selectNames(options.heads, Object.keys(manifest.heads), 'head');
    const remoteOf = (file) => (options.fp16 && file.fp16 ? file.fp16 : file.path);
    const add = (repo, remote, local) =>
      files.push({
        key: `${repo}/${remote}`,
        url: `${options.baseUrl}/${repo}/resolve/main/${remote}`,
        local,
        pinned: manifest.pinned_sha256?.[`${repo}/${remote}`],
      });
    for (const file of manifest.base.files) add(manifest.base.repo, remoteOf(file), join('base', file.path));
    heads = {};
    for (const head of wanted) {
      const repo = manifest.heads[head];
      const folder = join('controlnet', repo.split('/')[1]);
      heads[head] = folder;
      if (files.some((f) => f.local.startsWith(`${folder}/`))) continue; // hed and softedge share a head
      for (const file of manifest.head_files) add(repo, remoteOf(file), join(folder, file.path));
    }
  }
  files.push(...planAnnotators(manifest, options));
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
  const lfs = response.headers.has('x-linked-size') || sha256 !== undefined;
  return { sha256, lfs, size: Number.isFinite(size) ? size : undefined };
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

/**
 * Fetches one file unless it is already there with the expected hash. Expected: the pin, else the lock, else the
 * Hub's LFS sha256. A strict (annotator) file without a pin is refused unless unpinned files are allowed.
 */
async function fetchOne(file, { options, lock, lockPath, bars }) {
  const { key, url } = file;
  const target = join(options.out, file.local);
  if (file.strict && !file.pinned && !options.allowUnpinned) {
    throw new DownloadError(
      `${key}: no sha256 is pinned for it in the weights manifest, so its bytes cannot be checked. Pin ` +
        'annotators.files["<name>"].sha256 (and size), or pass --allow-unpinned (or CONTOUR_ALLOW_UNPINNED=1) to ' +
        `accept what is served now; its hash is then recorded in ${lockPath} and enforced on later runs.`,
    );
  }
  const info = await remoteInfo(url);
  if (lock[key] && info.sha256 && lock[key] !== info.sha256 && !file.pinned) {
    throw new DownloadError(`${key}: the Hub now serves sha256 ${info.sha256}, the lock says ${lock[key]}`);
  }
  // Refuse before downloading when the server announces another file than the pinned one.
  if (file.pinned && info.sha256 && info.sha256 !== file.pinned) {
    throw new DownloadError(
      `${key}: the server announces sha256 ${info.sha256}, the manifest pins ${file.pinned}; nothing was downloaded`,
    );
  }
  if (
    file.strict &&
    file.size !== undefined &&
    info.lfs &&
    info.size !== undefined &&
    info.size !== file.size
  ) {
    throw new DownloadError(
      `${key}: the server announces ${info.size} bytes, the manifest pins ${file.size}; nothing was downloaded`,
    );
  }
  const expected = file.pinned ?? lock[key] ?? info.sha256;
  await mkdir(dirname(target), { recursive: true });
  if (existsSync(target) && expected && (await sha256OfFile(target)) === expected) {
    bars.log(`ok (already present) ${file.local}\n`);
    if (lock[key] !== expected) {
      lock[key] = expected;
      await writeFile(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
    }
    return;
  }
  const { digest, part } = await download(url, target, bars, file.local);
  if (expected && digest !== expected) {
    await rm(part, { force: true });
    throw new DownloadError(
      `${key}: sha256 mismatch (got ${digest}, expected ${expected}); the download was deleted`,
    );
  }
  if (file.strict && file.size !== undefined && (await stat(part)).size !== file.size) {
    await rm(part, { force: true });
    throw new DownloadError(`${key}: size mismatch (expected ${file.size} bytes); the download was deleted`);
  }
  if (!expected && file.strict) {
    // Only reachable with --allow-unpinned: trust on first use, said out loud.
    bars.log(`warning: ${key} is not pinned; recorded the sha256 it has now: ${digest}\n`);
  }
  await rename(part, target);
  lock[key] = digest;
  await writeFile(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
}

async function main(argv) {
  const options = parseOptions(argv);
  if (options.help) {
    console.log(
      'node infra/download-weights.mjs --out DIR [--heads canny,depth|all] [--fp16] ' +
        '[--preprocessors softedge_hed,depth_midas|all] [--annotators ControlNetHED.pth,...|all] [--allow-unpinned] ' +
        '[--base-url URL] [--timeout-ms N] [--manifest FILE]',
    );
    return;
  }
  const manifest = JSON.parse(await readFile(options.manifestPath, 'utf8'));
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
    for (const file of files) await fetchOne(file, { options, lock, lockPath, bars });
  } finally {
    bars.stop();
  }
  if (heads) {
    const config = {
      base: { name: manifest.base.name, path: 'base', layout: 'diffusers' },
      heads,
      memory_budget_mb: 4096,
    };
    await writeFile(join(options.out, 'models.json'), `${JSON.stringify(config, null, 2)}\n`);
    console.log(`weights ready in ${options.out}; model config: ${join(options.out, 'models.json')}`);
  }
  if (files.some((file) => file.strict)) {
    console.log(`annotator weights ready: CONTOUR_ANNOTATOR_DIR=${join(options.out, ANNOTATOR_FOLDER)}`);
  }
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof DownloadError) {
    console.error(`download-weights: ${error.message}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
