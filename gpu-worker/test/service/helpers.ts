import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type WorkerJob, type WorkerMessage, WorkerMessageSchema } from '@contour/shared/contracts';
import { encodePng } from '@contour/shared/preprocess';
import { signRequest } from '@contour/shared/signing';

/** Repository root (the worker is started from there, as `npm start` does). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * The `backend` the test workers report: tfjs on wasm, or ONNX Runtime on the CPU when the tests run with
 * CONTOUR_ENGINE=onnxruntime (which the workers inherit).
 */
export const EXPECTED_BACKEND = process.env['CONTOUR_ENGINE'] === 'onnxruntime' ? 'onnxruntime-cpu' : 'wasm';

/** The secret the test workers are started with. */
export const TEST_SECRET = 'test-worker-secret';

/** A worker process started by {@link startWorkerProcess}. */
export interface WorkerProcess {
  url: string;
  child: ChildProcess;
  /** Everything it printed so far. */
  output: () => string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGKILL if still running (for afterAll). */
  kill: () => Promise<void>;
}

/**
 * Spawns `node --import tsx gpu-worker/src/main.ts` on a free port and waits for /readyz (up to
 * `readyTimeoutMs`: full-size weights take minutes to load on CPU).
 */
export async function startWorkerProcess(
  env: Record<string, string> = {},
  { readyTimeoutMs = 60_000 }: { readyTimeoutMs?: number } = {},
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gpu-worker/src/main.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      CONTOUR_TF_BACKEND: 'wasm',
      WORKER_SIGNING_SECRET: TEST_SECRET,
      CONTOUR_MODEL_CONFIG: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + readyTimeoutMs;
  let url: string | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`worker exited early:\n${output}`);
    url ??= /listening on (http:\/\/[^\s]+)/.exec(output)?.[1];
    if (url) {
      const ready = await fetch(`${url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) return { url, child, output: () => output, exited, kill };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await kill();
  throw new Error(`worker did not become ready:\n${output}`);
}

/** A 256x256 test drawing: a white ring and a bar on black (gives canny plenty of edges). */
export function drawingPng(size = 256): Uint8Array {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const r = Math.hypot(x - size / 2, y - size / 2);
      const on = (r > size * 0.25 && r < size * 0.35) || (y > size * 0.7 && y < size * 0.8 && x > size * 0.1);
      data.fill(on ? 255 : 0, (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  }
  return encodePng({ width: size, height: size, channels: 3, data });
}

/** A local HTTP server serving control images at `/<name>.png`. */
export interface ImageServer {
  url: (name: string) => string;
  sha256: (name: string) => string;
  requests: () => number;
  close: () => Promise<void>;
}

/** Serves the given PNGs from 127.0.0.1 (the worker fetches control images over HTTP). */
export async function startImageServer(images: Record<string, Uint8Array>): Promise<ImageServer> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const name = /^\/([\w-]+)\.png$/.exec(req.url ?? '')?.[1];
    const body = name ? images[name] : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}.png`,
    sha256: (name) =>
      createHash('sha256')
        .update(images[name] ?? new Uint8Array())
        .digest('hex'),
    requests: () => requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let jobCounter = 0;

/** A valid job (256x256, canny, few steps) with a fresh job id; `overrides` replace top-level fields. */
export function makeJob(images: ImageServer, overrides: Partial<WorkerJob> = {}): WorkerJob {
  jobCounter++;
  return {
    version: 1,
    job_id: `job_test_${process.pid}_${jobCounter}`,
    generation_id: 'gen_01HZY3J0V6A4R5Q2W9X8C7B6N5',
    attempt: 1,
    base_model: 'sd15',
    prompt: 'a ring over a bar, best quality',
    negative_prompt: 'lowres, bad anatomy',
    width: 256,
    height: 256,
    steps: 4,
    guidance_scale: 9,
    eta: 0,
    seed: 12345,
    num_images: 1,
    guess_mode: false,
    scheduler: 'ddim',
    output_format: 'png',
    controls: [
      {
        type: 'canny',
        image: {
          key: 'inputs/drawing.png',
          url: images.url('drawing'),
          width: 256,
          height: 256,
          content_type: 'image/png',
          sha256: images.sha256('drawing'),
        },
        preprocess: true,
        params: { low: 100, high: 200 },
        strength: 1,
        start: 0,
        end: 1,
      },
    ],
    deadline_at: Date.now() + 5 * 60_000,
    ...overrides,
  };
}

/** Signs and sends a request to the worker (the edge's side of the protocol). */
export async function signedFetch(
  workerUrl: string,
  method: 'POST' | 'DELETE',
  path: string,
  body: string,
  options: { secret?: string; now?: number; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers =
    options.headers ??
    (await signRequest({ method, path, body }, options.secret ?? TEST_SECRET, options.now ?? Date.now()));
  return fetch(`${workerUrl}${path}`, {
    method,
    body: method === 'POST' ? body : undefined,
    headers: { ...headers, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
  });
}

/** POSTs a signed job. */
export function postJob(workerUrl: string, job: unknown, options: Parameters<typeof signedFetch>[4] = {}) {
  return signedFetch(workerUrl, 'POST', '/v1/jobs', JSON.stringify(job), options);
}

/** Reads an NDJSON response into validated WorkerMessages. */
export async function readMessages(response: Response): Promise<WorkerMessage[]> {
  const text = await response.text();
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => WorkerMessageSchema.parse(JSON.parse(line)));
}

/** Calls `onMessage` for each NDJSON message as it arrives; resolves with all of them at the end. */
export async function streamMessages(
  response: Response,
  onMessage: (message: WorkerMessage) => void,
): Promise<WorkerMessage[]> {
  const all: WorkerMessage[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) {
        const message = WorkerMessageSchema.parse(JSON.parse(line));
        all.push(message);
        onMessage(message);
      }
      newline = buffered.indexOf('\n');
    }
  }
  return all;
}

/** One sample of a Prometheus text exposition (`name{labels} value`), or 0 when absent. */
export function metricValue(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (line.slice(0, space) === sample) return Number(line.slice(space + 1));
  }
  return 0;
}

/** Scrapes /metrics. */
export async function scrape(workerUrl: string): Promise<string> {
  return (await fetch(`${workerUrl}/metrics`)).text();
}

/** Waits until no job is on the device (a canceled batch stops at its next step). */
export async function waitIdle(workerUrl: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (metricValue(await scrape(workerUrl), 'contour_worker_jobs_running') === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the worker stayed busy');
}

/** The result message a job's stream ends with (throws with what came instead). */
export function resultOf(messages: WorkerMessage[]) {
  const last = messages.at(-1);
  if (last?.type !== 'result') throw new Error(`expected a result, got ${JSON.stringify(last)}`);
  return last;
}
