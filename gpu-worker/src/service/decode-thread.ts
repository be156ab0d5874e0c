/**
 * The image thread: decodes, resizes and preprocesses control images off the HTTP thread, so a costly (or
 * hostile) image never stalls `/healthz`, progress streams or cancellations. Runs {@link decodeControl}.
 */
import { parentPort } from 'node:worker_threads';
import { JobError } from './errors.ts';
import { type DecodeControlInput, decodeControl, setUpWebp } from './images.ts';

const port = parentPort;
if (!port) throw new Error('decode-thread.ts must run in a worker thread');
setUpWebp();

port.on('message', async (message: { id: number; input: DecodeControlInput }) => {
  try {
    const made = await decodeControl(message.input);
    port.postMessage({ id: message.id, ok: true, made }, [
      made.image8.data.buffer as ArrayBuffer,
      made.map.data.buffer as ArrayBuffer,
    ]);
  } catch (error) {
    const job = error instanceof JobError;
    port.postMessage({
      id: message.id,
      ok: false,
      error: {
        code: job ? error.code : 'image_invalid',
        message: error instanceof Error ? error.message : String(error),
        retryable: job ? error.retryable : false,
      },
    });
  }
});
