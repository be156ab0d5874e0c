/**
 * The image thread: decodes, resizes and preprocesses control images off the HTTP thread, so a costly (or
 * hostile) image never stalls `/healthz`, progress streams or cancellations. Runs {@link decodeControl}.
 */
import { parentPort } from 'node:worker_threads';
import { hwc3, resizeImage, resizeImageTo } from '@contour/shared/preprocess';
import { JobError } from './errors.ts';
import {
  type DecodeControlInput,
  type DecodeDetectInput,
  type DecodeImageInput,
  decode,
  decodeControl,
  setUpWebp,
} from './images.ts';

const port = parentPort;
if (!port) throw new Error('decode-thread.ts must run in a worker thread');
setUpWebp();

port.on(
  'message',
  async (
    message:
      | { id: number; input: DecodeControlInput }
      | { id: number; image: DecodeImageInput }
      | { id: number; detect: DecodeDetectInput },
  ) => {
    try {
      if ('detect' in message) {
        const { bytes, resolution, what } = message.detect;
        const image = resizeImage(hwc3(await decode(bytes, what)), resolution);
        port.postMessage({ id: message.id, ok: true, image }, [image.data.buffer as ArrayBuffer]);
        return;
      }
      if ('image' in message) {
        // An init image or inpaint mask: decoded and resized only (no control preprocessing, channels kept).
        const { bytes, width, height, what } = message.image;
        const image = resizeImageTo(await decode(bytes, what), width, height);
        port.postMessage({ id: message.id, ok: true, image }, [image.data.buffer as ArrayBuffer]);
        return;
      }
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
  },
);
