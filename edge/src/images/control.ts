import {
  CONTROL_TYPE_INFO,
  type ControlType,
  type ControlUnit,
  type DerivedSize,
  deriveOutputSize,
  type ErrorDetail,
  type ImageRef,
  type JobControl,
  PREPROCESSORS,
  pixelPerfectResolution,
  type Size,
} from '@contour/shared/contracts';
import {
  type DecodeWork,
  decodeImage,
  decodeWork,
  encodePngAsync,
  ImageError,
  type ImageHeader,
  MAX_DECODE_WORK,
  type PreprocessorName,
  preprocess,
  readImageHeader,
  resizeImageTo,
} from '@contour/shared/preprocess';
import { ApiError } from '../lib/errors.ts';
import { type Attachments, loadImageSource } from './input.ts';
import type { ImageUrlSigner } from './signed-url.ts';
import { CONTENT_TYPES, storeImage } from './store.ts';

/** Largest input image in pixels (checked on the header, before decoding). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

/** Preprocessors the edge runs itself with `@contour/shared/preprocess` (the others go to the worker). */
export const SHARED_PREPROCESSORS: Partial<Record<string, PreprocessorName>> = {
  canny: 'canny',
  scribble: 'scribble',
  invert: 'lineart',
};

/** An input image read far enough to know its format, size and decode cost. */
export interface LoadedImage {
  bytes: Uint8Array;
  header: ImageHeader;
  /** Decode work estimated from the headers (JPEG scans counted): decides edge or worker preprocessing. */
  work: DecodeWork;
}

/**
 * Decode work the edge spends on one image, in baseline-JPEG-pixel units (`EDGE_PREPROCESS_MAX_PIXELS`,
 * default 1,048,576 = ~0.4 s of one core, measured by `npm run bench`); heavier images go to the worker.
 */
export function edgeDecodeBudget(env: { EDGE_PREPROCESS_MAX_PIXELS: string }): number {
  const configured = Number(env.EDGE_PREPROCESS_MAX_PIXELS);
  return Number.isFinite(configured) && configured >= 0 ? configured : 1_048_576;
}

/** Maps the shared image errors to envelope errors on the field at fault. */
export function imageErrorToApi(error: unknown, path: string): unknown {
  if (!(error instanceof ImageError)) return error;
  const code = error.code === 'image_too_large' ? 'image_too_large' : 'image_invalid';
  return new ApiError(code, `${path}: ${error.message}`, [
    { path, message: error.message } satisfies ErrorDetail,
  ]);
}

/** Reads an image source and its header, refusing unknown formats and oversized images before decoding. */
export async function loadImage(
  source: string,
  options: { path: string; attachments?: Attachments; allowInsecureUrls: boolean; dohUrl?: string },
): Promise<LoadedImage> {
  const bytes = await loadImageSource(source, options);
  try {
    const header = readImageHeader(bytes);
    if (header.width * header.height > MAX_INPUT_PIXELS) {
      throw new ImageError(
        'image_too_large',
        `image is ${header.width}x${header.height}, over the ${MAX_INPUT_PIXELS}-pixel limit`,
      );
    }
    // Counted now (a linear walk of the markers), so a decode-cost attack is refused before anything runs.
    const work = decodeWork(bytes);
    if (work.units > MAX_DECODE_WORK) {
      throw new ImageError(
        'image_too_large',
        `image needs ~${work.units} units of decode work (${work.width}x${work.height}, ${work.scans} scans), the limit is ${MAX_DECODE_WORK}`,
      );
    }
    return { bytes, header, work };
  } catch (error) {
    throw imageErrorToApi(error, options.path);
  }
}

/** Output size: the request's, or derived from the first control image like the original `resize_image`. */
export function outputSize(
  request: { width?: number | undefined; height?: number | undefined; image_resolution: number },
  first: ImageHeader,
): DerivedSize {
  if (request.width !== undefined && request.height !== undefined) {
    const size = { width: request.width, height: request.height };
    return { ...size, adjusted: false, original: size };
  }
  return deriveOutputSize(first, request.image_resolution);
}

/** Runs a shared preprocessor on the image resized to the output size, as the original apps do. */
export async function runSharedPreprocessor(
  name: PreprocessorName,
  image: LoadedImage,
  size: Size,
  params: Record<string, number>,
  path: string,
  maxWork: number = MAX_DECODE_WORK,
): Promise<Uint8Array> {
  try {
    const decoded = await decodeImage(image.bytes, { maxPixels: MAX_INPUT_PIXELS, maxWork });
    const resized = resizeImageTo(decoded, size.width, size.height);
    const map = preprocess(name, resized, { low: params['low'], high: params['high'] });
    return await encodePngAsync(map);
  } catch (error) {
    throw imageErrorToApi(error, path);
  }
}

/** What {@link prepareControl} decided for one unit. */
export interface PreparedControl {
  job: JobControl;
  /** Set when the edge made the control map itself (stored in R2). */
  controlMapKey: string | null;
}

/**
 * Stores one unit's image for the worker. Cheap preprocessors run here when the image is within the
 * edge pixel budget (the control map is stored); otherwise the original is stored and the worker
 * preprocesses it with the same shared code.
 */
export async function prepareControl(
  unit: ControlUnit,
  index: number,
  image: LoadedImage,
  mask: LoadedImage | null,
  context: {
    generationId: string;
    /** The generation's seed: content shuffle's seed when the unit names none (as the 1.1 app). */
    seed: number;
    size: Size;
    bucket: R2Bucket;
    signer: ImageUrlSigner;
    account: string | null;
    edgeMaxPixels: number;
  },
): Promise<PreparedControl> {
  const path = `controls.${index}.image`;
  const preprocessor = unit.preprocessor;
  if (unit.preprocess && !preprocessor) {
    const kind = CONTROL_TYPE_INFO[unit.type].preprocessor;
    throw new ApiError(
      'validation_failed',
      `${unit.type} has no preprocessor (${kind}: the control is the image itself); send preprocess: false`,
      [{ path: `controls.${index}.preprocess`, message: `the ${unit.type} control has no preprocessor` }],
    );
  }
  const sharedPreprocessor = preprocessor ? SHARED_PREPROCESSORS[preprocessor] : undefined;
  const params = { ...unit.params } as Record<string, number>;
  if (unit.preprocess && preprocessor === 'shuffle' && params['seed'] === undefined)
    params['seed'] = context.seed;
  if (
    unit.preprocess &&
    preprocessor &&
    unit.pixel_perfect &&
    PREPROCESSORS[preprocessor].stage === 'worker'
  ) {
    params['detect_resolution'] = pixelPerfectResolution(image.header, context.size);
  }
  const base = {
    type: unit.type,
    strength: unit.strength,
    start: unit.start,
    end: unit.end,
    params,
    ...(unit.preprocess && preprocessor ? { preprocessor } : {}),
  };
  const { bucket, signer, account, generationId, size } = context;
  let maskRef: ImageRef | undefined;
  if (mask) {
    maskRef = await storeImage(
      bucket,
      `inputs/${generationId}/${index}-mask.${mask.header.format}`,
      mask.bytes,
      {
        contentType: CONTENT_TYPES[mask.header.format],
        width: mask.header.width,
        height: mask.header.height,
        signer,
        account,
      },
    );
  }
  const original = await storeImage(
    bucket,
    `inputs/${generationId}/${index}.${image.header.format}`,
    image.bytes,
    {
      contentType: CONTENT_TYPES[image.header.format],
      width: image.header.width,
      height: image.header.height,
      signer,
      account,
    },
  );
  const withMask = maskRef ? { mask: maskRef } : {};
  if (unit.preprocess && sharedPreprocessor && image.work.units <= context.edgeMaxPixels) {
    const png = await runSharedPreprocessor(
      sharedPreprocessor,
      image,
      size,
      params,
      path,
      context.edgeMaxPixels,
    );
    const key = `controls/${generationId}/${index}.png`;
    const map = await storeImage(bucket, key, png, { contentType: 'image/png', ...size, signer, account });
    // The original is kept too, for backends that run their own preprocessor (Replicate).
    return {
      job: { ...base, image: map, source: original, preprocess: false, ...withMask },
      controlMapKey: key,
    };
  }
  return { job: { ...base, image: original, preprocess: unit.preprocess, ...withMask }, controlMapKey: null };
}
