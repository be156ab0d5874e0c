import type { PreprocessRequestSchema, PreprocessResult } from '@contour/shared/contracts';
import type { input } from 'zod';
import type { RequestOptions, Transport } from '../http/transport.ts';
import { encodeImages, type WithImageInputs } from '../uploads/uploads.ts';

/** `preprocess` input: the API request (defaults optional), where `image` may also be a Blob or bytes. */
export type PreprocessParams = WithImageInputs<input<typeof PreprocessRequestSchema>>;

/** `POST /v1/preprocess`: only the control map (e.g. Canny edges), stored and returned by URL. */
export async function preprocess(
  transport: Transport,
  params: PreprocessParams,
  options: RequestOptions = {},
): Promise<PreprocessResult> {
  const encoded = encodeImages(params, (copy) => [copy as Record<string, unknown>], 'preprocess_');
  return transport.json<PreprocessResult>(
    { method: 'POST', path: '/v1/preprocess', body: encoded.body },
    options,
  );
}
