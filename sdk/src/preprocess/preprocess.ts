import type { PreprocessRequestSchema, PreprocessResult } from '@contour/shared/contracts';
import type { input } from 'zod';
import type { RequestOptions, Transport } from '../http/transport.ts';
import { encodeImages, type WithImageInputs } from '../uploads/uploads.ts';

/**
 * `preprocess` input: the API request (defaults optional): a `preprocessor` name (or a control `type`: its
 * default preprocessor), the `image` and, for `inpaint`, the `mask`; both may also be a Blob or bytes.
 */
export type PreprocessParams = WithImageInputs<input<typeof PreprocessRequestSchema>>;

/**
 * `POST /v1/preprocess`: only the control map, stored and returned by URL. Edge preprocessors (canny, scribble,
 * invert, shuffle, tile_resample, inpaint) run at the API's edge; network ones (depth_midas, openpose_full...)
 * on a GPU worker, which answers `model_not_available` (an `ApiError`) naming the weight file it lacks.
 * openpose* results carry the detected `keypoints` (OpenPose JSON).
 */
export async function preprocess(
  transport: Transport,
  params: PreprocessParams,
  options: RequestOptions = {},
): Promise<PreprocessResult> {
  // `image` and `mask` bytes go as the multipart parts preprocess_0_image / preprocess_0_mask.
  const encoded = encodeImages(params, (copy) => [copy as Record<string, unknown>], 'preprocess_');
  return transport.json<PreprocessResult>(
    { method: 'POST', path: '/v1/preprocess', body: encoded.body },
    options,
  );
}
