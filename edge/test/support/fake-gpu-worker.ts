/**
 * A stand-in GPU worker for edge dispatch tests (the real worker is exercised end to end in tests/).
 * It speaks the real protocol — verifies the shared HMAC signature, parses the WorkerJob with the shared
 * schema, streams NDJSON WorkerMessages with real PNGs — and injects the faults the edge must survive,
 * chosen by the first path segment of the worker URL:
 *   /ok    progress per step, then a result
 *   /slow  like ok, 150 ms per step (cancel tests)
 *   /busy  429 with Retry-After
 *   /down  500
 *   /fail  a non-retryable error line after one step
 *   /cut   one progress line, then the stream ends without a result
 * POST /v1/preprocess (any scenario) runs openpose* (a grey map and one person's keypoints) and answers the
 * other network preprocessors 422 model_not_available naming their weights, as a worker without them does.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  PREPROCESSORS,
  WorkerJobSchema,
  type WorkerMessage,
  WorkerPreprocessRequestSchema,
  type WorkerPreprocessResult,
} from '@contour/shared/contracts';
import { encodePng } from '@contour/shared/preprocess';
import { verifyRequest } from '@contour/shared/signing';

/** The secret the tests' wrangler config gives the edge. */
export const FAKE_WORKER_SECRET = 'local-dev-worker-secret';

/** What the fake saw, for assertions (exposed at GET /_log). */
interface LogEntry {
  scenario: string;
  method: string;
  path: string;
  verified: boolean;
  job_id?: string;
  /** The job's img2img / inpaint fields, when it has them. */
  image_modes?: { init_image?: string; mask?: string; strength?: number; mask_blur?: number };
  /** A /v1/preprocess request: which preprocessor, the input's URL and the params. */
  preprocess?: { preprocessor: string; image_url: string; params: Record<string, number> };
}

function readAll(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the fake on a free loopback port. */
export async function startFakeGpuWorker(): Promise<{ url: string; server: Server }> {
  const log: LogEntry[] = [];
  const canceled = new Set<string>();
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const [, scenario = '', ...rest] = url.pathname.split('/');
    const path = `/${rest.join('/')}`;
    if (url.pathname === '/_log') {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(log));
      return;
    }
    if (path === '/v1/models') {
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          control_types: ['canny', 'scribble'],
          base: {
            name: 'fake-builtin',
            builtin: true,
            native_resolution: 64,
            description: 'a fake worker',
            suggested: { prompt: 'red circle with blue background', steps: 20, guidance_scale: 3 },
          },
        }),
      );
      return;
    }
    const body = await readAll(request);
    const headers = new Headers(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
    const verified = (
      await verifyRequest({ method: request.method ?? 'GET', path, body }, headers, FAKE_WORKER_SECRET)
    ).ok;
    const entry: LogEntry = { scenario, method: request.method ?? '', path, verified };
    log.push(entry);
    if (!verified) {
      response.statusCode = 401;
      response.end(
        JSON.stringify({ error: { code: 'unauthenticated', message: 'bad signature', details: [] } }),
      );
      return;
    }
    if (path.endsWith('/v1/preprocess')) {
      // What a worker without annotator weights answers (gpu-worker/src/service/app.ts).
      response.statusCode = 422;
      response.setHeader('content-type', 'application/json');
      response.end(
        JSON.stringify({
          error: {
            code: 'model_not_available',
            message: 'the preprocessor needs weights that are not installed on this worker',
            details: [{ path: 'preprocessor', message: 'not installed' }],
          },
        }),
      );
      return;
    }
    if (request.method === 'DELETE') {
      canceled.add(decodeURIComponent(path.split('/').pop() ?? ''));
      response.statusCode = 202;
      response.end('{}');
      return;
    }
    if (path === '/v1/preprocess') {
      const request = WorkerPreprocessRequestSchema.parse(JSON.parse(body));
      entry.preprocess = {
        preprocessor: request.preprocessor,
        image_url: request.image.url,
        params: request.params,
      };
      response.setHeader('content-type', 'application/json');
      if (!request.preprocessor.startsWith('openpose')) {
        const missing = PREPROCESSORS[request.preprocessor].weights.join(', ');
        const message = `the ${request.preprocessor} preprocessor needs ${missing} in /weights`;
        response.statusCode = 422;
        response.end(
          JSON.stringify({
            error: { code: 'model_not_available', message, details: [{ path: 'preprocessor', message }] },
          }),
        );
        return;
      }
      const { width, height } = request;
      const data = new Uint8Array(width * height * 3).fill(40);
      const result: WorkerPreprocessResult = {
        preprocessor: request.preprocessor,
        width,
        height,
        content_type: 'image/png',
        data_base64: Buffer.from(encodePng({ width, height, channels: 3, data })).toString('base64'),
        keypoints: {
          canvas_width: width,
          canvas_height: height,
          people: [{ pose_keypoints_2d: [width / 2, height / 2, 1] }],
        },
        timings_ms: { total: 1 },
      };
      response.end(JSON.stringify(result));
      return;
    }
    const job = WorkerJobSchema.parse(JSON.parse(body));
    entry.job_id = job.job_id;
    if (job.init_image) {
      entry.image_modes = {
        init_image: job.init_image.key,
        mask: job.mask?.key,
        strength: job.strength,
        mask_blur: job.mask_blur,
      };
    }
    if (scenario === 'busy') {
      response.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { code: 'queue_full', message: 'busy', details: [] } }));
      return;
    }
    if (scenario === 'down') {
      response.statusCode = 500;
      response.end('{}');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const send = (message: WorkerMessage) => response.write(`${JSON.stringify(message)}\n`);
    const total = job.steps * job.num_images;
    for (let step = 1; step <= total; step++) {
      if (canceled.has(job.job_id)) {
        send({ type: 'error', job_id: job.job_id, code: 'canceled', message: 'canceled', retryable: false });
        response.end();
        return;
      }
      send({ type: 'progress', job_id: job.job_id, step, total });
      if (scenario === 'slow') await sleep(150);
      if (scenario === 'fail') {
        send({
          type: 'error',
          job_id: job.job_id,
          code: 'backend_error',
          message: 'out of memory',
          retryable: false,
        });
        response.end();
        return;
      }
      if (scenario === 'cut') {
        response.end();
        return;
      }
    }
    const png = (shade: number) => {
      const data = new Uint8Array(job.width * job.height * 3).fill(shade);
      return Buffer.from(encodePng({ width: job.width, height: job.height, channels: 3, data })).toString(
        'base64',
      );
    };
    send({
      type: 'result',
      job_id: job.job_id,
      images: Array.from({ length: job.num_images }, (_, index) => ({
        index,
        content_type: 'image/png',
        data_base64: png(10 + index),
        width: job.width,
        height: job.height,
      })),
      control_maps: job.controls.flatMap((c, index) =>
        c.preprocess ? [{ index, content_type: 'image/png', data_base64: png(255) }] : [],
      ),
      steps: job.steps,
      timings_ms: { total: 1 },
      backend: 'fake',
      model: { base: 'fake', heads: ['canny'], builtin: true },
    });
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}
