import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '@contour/shared/contracts';
import type { Image8 } from '@contour/shared/preprocess';
import { JobError } from './errors.ts';
import type { ControlImage, DecodeControlInput, DecodeDetectInput, DecodeImageInput } from './images.ts';

interface Pending {
  resolve: (made: ControlImage & Image8) => void;
  reject: (error: unknown) => void;
}

type Reply =
  | { id: number; ok: true; made: ControlImage }
  | { id: number; ok: true; image: Image8 }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; retryable: boolean } };

/** Starts decode-thread.ts (registering tsx's hooks first when running from sources, as the model thread does). */
function startThread(): Worker {
  const entry = new URL('./decode-thread.ts', import.meta.url);
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
    .then((api) => api.register())
    .then(() => import(${JSON.stringify(entry.href)}));`;
  return new Worker(bootstrap, { eval: true });
}

/**
 * One image thread, started on first use and restarted after it dies. Control images are decoded there in
 * arrival order; the HTTP thread only fetches bytes and hands them over (the buffers come back transferred).
 */
export class DecodePool {
  private thread: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  /** Decodes, resizes and preprocesses one control image in the image thread. */
  run(input: DecodeControlInput): Promise<ControlImage> {
    const thread = this.ensure();
    const id = this.nextId++;
    return new Promise<ControlImage>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      const transfer = [input.image.buffer, ...(input.mask ? [input.mask.buffer] : [])] as ArrayBuffer[];
      thread.postMessage({ id, input }, transfer);
    });
  }

  /** Decodes and resizes one image (an init image or mask) in the image thread. */
  image(input: DecodeImageInput): Promise<Image8> {
    const thread = this.ensure();
    const id = this.nextId++;
    return new Promise<Image8>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      thread.postMessage({ id, image: input }, [input.bytes.buffer as ArrayBuffer]);
    });
  }

  /** Decodes an image for a network preprocessor: HWC3, then `resize_image` to the detect resolution. */
  detect(input: DecodeDetectInput): Promise<Image8<3>> {
    const thread = this.ensure();
    const id = this.nextId++;
    return new Promise<Image8<3>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      thread.postMessage({ id, detect: input }, [input.bytes.buffer as ArrayBuffer]);
    });
  }

  /** Stops the thread (worker shutdown). */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    await thread?.terminate();
  }

  private ensure(): Worker {
    if (this.thread) return this.thread;
    const thread = startThread();
    thread.unref();
    thread.on('message', (reply: Reply) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.ok) pending.resolve(('made' in reply ? reply.made : reply.image) as ControlImage & Image8);
      else pending.reject(new JobError(reply.error.code, reply.error.message, reply.error.retryable));
    });
    thread.on('error', (error) => console.error('worker: the image thread failed', error));
    thread.on('exit', () => {
      if (this.thread === thread) this.thread = undefined;
      const gone = new JobError('backend_unavailable', 'the image thread stopped', true);
      for (const pending of this.pending.values()) pending.reject(gone);
      this.pending.clear();
    });
    this.thread = thread;
    return thread;
  }
}

/** The worker's image thread. */
export const decodePool = new DecodePool();
