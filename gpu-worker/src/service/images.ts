import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  CONTROL_TYPE_INFO,
  type ControlType,
  defaultPreprocessor,
  type ErrorCode,
  isNetworkPreprocessor,
  type JobControl,
  type OutputFormat,
  type PreprocessorName,
} from '@contour/shared/contracts';
import { BodyReadAbortedError, BodyTooLargeError, readBodyLimited } from '@contour/shared/http';
import {
  type ControlMap,
  contentShuffle,
  cvResize,
  decodeImage,
  encodeJpeg,
  encodePng,
  encodeWebp,
  hwc3,
  type Image8,
  ImageError,
  preprocess,
  registerWebpCodec,
  resizeImageTo,
  tileResample,
  toControlMap,
} from '@contour/shared/preprocess';
import { sha256Hex } from '@contour/shared/signing';
import type { PreprocessorParams, PreprocessorResult } from '../preprocessors/types.ts';
import { decodePool } from './decode-pool.ts';
import { JobError } from './errors.ts';

/** Options of {@link fetchImage}. */
export interface FetchImageOptions {
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

/** Downloads an image (http or https), refusing bodies over `maxBytes`. */
export async function fetchImage(url: string, options: FetchImageOptions): Promise<Uint8Array> {
  const protocol = new URL(url).protocol;
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new JobError('image_fetch_failed', `control image URL must be http(s), got ${protocol}`, false);
  }
  const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
  // One deadline for connecting, headers and the whole body (a server that drips its body is a failure).
  const signal = AbortSignal.any(signals);
  let response: Response;
  try {
    response = await fetch(url, { signal, redirect: 'follow' });
  } catch (error) {
    throw new JobError('image_fetch_failed', `fetching ${url} failed: ${String(error)}`, true);
  }
  if (!response.ok) {
    await response.body?.cancel();
    // 5xx and 429 may pass on a retry; other statuses will not.
    const retryable = response.status >= 500 || response.status === 429;
    throw new JobError('image_fetch_failed', `fetching ${url} returned HTTP ${response.status}`, retryable);
  }
  try {
    return await readBodyLimited(response, options.maxBytes, { signal });
  } catch (error) {
    if (error instanceof BodyTooLargeError)
      throw new JobError('image_too_large', `control image ${error.message}`);
    const reason = error instanceof BodyReadAbortedError ? error.message : String(error);
    throw new JobError('image_fetch_failed', `reading ${url} failed: ${reason}`, true);
  }
}

function imageErrorCode(error: ImageError): ErrorCode {
  return error.code === 'image_too_large' ? 'image_too_large' : 'image_invalid';
}

/** Decodes image bytes, mapping codec failures to the API's image codes. */
export async function decode(bytes: Uint8Array, what: string): Promise<Image8> {
  try {
    return await decodeImage(bytes);
  } catch (error) {
    if (error instanceof ImageError) throw new JobError(imageErrorCode(error), `${what}: ${error.message}`);
    throw error;
  }
}

/** The 8-bit control image of one unit at the job size, and the float map the model takes. */
export interface ControlImage {
  image8: Image8<3>;
  map: ControlMap;
}

/**
 * Makes the control map of one unit from the input image, already resized to the job's size: the shared cheap
 * preprocessors, the image itself for identity types, and inpaint's "masked pixels are -1".
 */
export function controlFromImage(
  type: ControlType,
  image: Image8,
  preprocessIt: boolean,
  params: Record<string, number>,
  mask?: Image8,
  preprocessor: PreprocessorName | undefined = defaultPreprocessor(type),
): ControlImage {
  if (!preprocessIt) {
    const image8 = hwc3(image);
    return { image8, map: toControlMap(image8) };
  }
  const info = CONTROL_TYPE_INFO[type];
  if (info.preprocessor === 'identity') {
    const image8 = hwc3(image);
    return { image8, map: toControlMap(image8) };
  }
  let image8: Image8<3>;
  if (preprocessor === 'tile_resample') {
    const rate = params['down_sampling_rate'] ?? 1;
    const small = tileResample(image, rate, (img, w, h) => resizeImageTo(img, w, h));
    image8 = resizeImageTo(small, image.width, image.height);
    return { image8, map: toControlMap(image8) };
  }
  switch (type) {
    case 'canny':
      image8 = preprocess('canny', image, { low: params['low'], high: params['high'] });
      break;
    case 'scribble':
      image8 = preprocess('scribble', image);
      break;
    case 'lineart':
    case 'lineart_anime':
      image8 = preprocess('lineart', image);
      break;
    case 'inpaint': {
      if (!mask) throw new JobError('validation_failed', `inpaint control needs a mask`);
      image8 = hwc3(image);
      const map = toControlMap(image8);
      const maskRgb = hwc3(mask);
      // The 1.1 inpaint model's convention: pixels to repaint are -1 in the control.
      for (let p = 0; p < maskRgb.data.length; p += 3) {
        if (maskRgb.data[p]! > 127) map.data.fill(-1, p, p + 3);
      }
      return { image8, map };
    }
    default:
      throw new JobError(
        'model_not_available',
        `this worker has no "${type}" preprocessor (${info.description}); send the control map with preprocess: false`,
      );
  }
  return { image8, map: toControlMap(image8) };
}

/** What the image thread needs to make one control: the fetched bytes and the job's settings. */
/** An image the image thread only decodes and resizes (init images, inpaint masks); `what` names it in errors. */
export interface DecodeImageInput {
  bytes: Uint8Array;
  width: number;
  height: number;
  what: string;
}

export interface DecodeControlInput {
  image: Uint8Array;
  mask?: Uint8Array | undefined;
  width: number;
  height: number;
  type: ControlType;
  preprocess: boolean;
  /** The edge preprocessor to run (default: the type's); network ones do not come here. */
  preprocessor?: PreprocessorName | undefined;
  params: Record<string, number>;
}

/** An image for a network preprocessor: decoded, HWC3 and `resize_image(img, resolution)`-ed, as the 1.1 apps do. */
export interface DecodeDetectInput {
  bytes: Uint8Array;
  resolution: number;
  what: string;
}

/** Decodes (within the shared decode-work limit), resizes and preprocesses one control: the image thread's job. */
export async function decodeControl(input: DecodeControlInput): Promise<ControlImage> {
  if (input.preprocess && input.preprocessor === 'shuffle') {
    // The 1.1 shuffle samples the whole input (not the resized image) onto the output grid.
    const source = await decode(input.image, 'control image');
    const image8 = contentShuffle(source, input.width, input.height, input.params['seed'] ?? 0);
    return { image8, map: toControlMap(image8) };
  }
  const image = resizeImageTo(await decode(input.image, 'control image'), input.width, input.height);
  const mask = input.mask
    ? resizeImageTo(await decode(input.mask, 'mask'), input.width, input.height)
    : undefined;
  return controlFromImage(input.type, image, input.preprocess, input.params, mask, input.preprocessor);
}

/** Runs a network preprocessor (the model thread's annotators). */
export type RunPreprocessor = (
  name: string,
  image: Image8<3>,
  params: PreprocessorParams,
) => Promise<PreprocessorResult>;

/**
 * A network preprocessor's map, made at detect resolution, resized to the job size as the 1.1 apps do:
 * `cv2.resize(detected_map, (W, H), interpolation=cv2.INTER_LINEAR)`.
 */
export function mapToSize(map: Image8<3>, width: number, height: number): Image8<3> {
  if (map.width === width && map.height === height) return map;
  return cvResize(map, width, height, 'linear') as Image8<3>;
}

/**
 * Fetches, verifies and turns one job control into its map at width x height. The decoding runs in the image
 * thread (decode-thread.ts) unless `inThread` is false, so the HTTP thread stays free.
 */
export async function prepareControl(
  control: JobControl,
  width: number,
  height: number,
  options: FetchImageOptions & { inThread?: boolean; runPreprocessor?: RunPreprocessor | undefined },
): Promise<ControlImage & { fetchMs: number; preprocessMs: number }> {
  const started = performance.now();
  const load = async (ref: JobControl['image'], what: string) => {
    const bytes = await fetchImage(ref.url, options);
    const digest = await sha256Hex(bytes);
    if (digest !== ref.sha256) {
      throw new JobError('image_invalid', `${what}: sha256 ${digest} does not match the job's ${ref.sha256}`);
    }
    return bytes;
  };
  const [imageBytes, maskBytes] = await Promise.all([
    load(control.image, 'control image'),
    control.mask ? load(control.mask, 'mask') : undefined,
  ]);
  const fetched = performance.now();
  const preprocessor = control.preprocessor ?? defaultPreprocessor(control.type);
  if (control.preprocess && preprocessor && isNetworkPreprocessor(preprocessor)) {
    if (!options.runPreprocessor) {
      throw new JobError(
        'model_not_available',
        `this worker runs no network preprocessors (${preprocessor})`,
      );
    }
    const resolution = control.params['detect_resolution'] ?? 512;
    const detect = await decodePool.detect({ bytes: imageBytes, resolution, what: 'control image' });
    const { map } = await options.runPreprocessor(preprocessor, detect, control.params);
    const image8 = mapToSize(map, width, height);
    return {
      image8,
      map: toControlMap(image8),
      fetchMs: fetched - started,
      preprocessMs: performance.now() - fetched,
    };
  }
  const input: DecodeControlInput = {
    image: imageBytes,
    mask: maskBytes,
    width,
    height,
    type: control.type,
    preprocess: control.preprocess,
    preprocessor,
    params: control.params,
  };
  const made = options.inThread === false ? await decodeControl(input) : await decodePool.run(input);
  return { ...made, fetchMs: fetched - started, preprocessMs: performance.now() - fetched };
}

let webpReady = false;

/** Loads libwebp's wasm modules for WebP input and output (Node reads them from the installed package). */
export function setUpWebp(): void {
  if (webpReady) return;
  const require = createRequire(import.meta.url);
  const load = (path: string) => new WebAssembly.Module(readFileSync(require.resolve(path)));
  registerWebpCodec({
    decoder: load('@jsquash/webp/codec/dec/webp_dec.wasm'),
    encoder: load('@jsquash/webp/codec/enc/webp_enc_simd.wasm'),
  });
  webpReady = true;
}

/** MIME type of an output format. */
export const OUTPUT_CONTENT_TYPES: Record<OutputFormat, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
};

/** Encodes one output image in the job's format. */
export async function encodeOutput(image: Image8, format: OutputFormat): Promise<Uint8Array> {
  if (format === 'png') return encodePng(image);
  if (format === 'jpeg') return encodeJpeg(image, 92);
  return encodeWebp(image, { quality: 92 });
}
