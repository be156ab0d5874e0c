import { describe, expect, expectTypeOf, it } from 'vitest';
import { Contour } from '../client.ts';
import { ApiError } from '../errors/errors.ts';
import type { PoseKeypoints, PreprocessorName } from '../index.ts';
import type { PreprocessParams } from './preprocess.ts';

const keypoints: PoseKeypoints = {
  canvas_width: 512,
  canvas_height: 512,
  people: [{ pose_keypoints_2d: [10, 20, 0.9], hand_left_keypoints_2d: [1, 2, 1] }],
};

/** A client whose fetch records each request and answers with `respond`. */
function client(respond: (request: Request) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const contour = new Contour({
    apiKey: 'sk_test',
    baseUrl: 'http://api.test',
    maxRetries: 0,
    fetch: async (input, init) => {
      const request = new Request(input, init);
      seen.push(request.clone());
      return respond(request);
    },
  });
  return { contour, seen };
}

describe('preprocess', () => {
  it('sends the preprocessor, pixel_perfect and params as JSON and returns the keypoints typed', async () => {
    const { contour, seen } = client(() =>
      Response.json({
        type: 'openpose',
        preprocessor: 'openpose_full',
        width: 512,
        height: 512,
        url: 'http://api.test/v1/images/controls/x/openpose_full.png?exp=1&sig=s',
        stage: 'worker',
        detect_resolution: 512,
        keypoints,
      }),
    );
    const result = await contour.preprocess({
      preprocessor: 'openpose_full',
      image: 'https://x.test/person.png',
      params: { detect_resolution: 384 },
      pixel_perfect: true,
    });
    expect(seen[0]!.method).toBe('POST');
    expect(new URL(seen[0]!.url).pathname).toBe('/v1/preprocess');
    expect(await seen[0]!.json()).toEqual({
      preprocessor: 'openpose_full',
      image: 'https://x.test/person.png',
      params: { detect_resolution: 384 },
      pixel_perfect: true,
    });
    expect(result.keypoints?.people[0]?.pose_keypoints_2d).toEqual([10, 20, 0.9]);
    expect(result.detect_resolution).toBe(512);
    expectTypeOf(result.keypoints).toEqualTypeOf<PoseKeypoints | undefined>();
    expectTypeOf(result.preprocessor).toEqualTypeOf<PreprocessorName>();
    expectTypeOf<PreprocessParams['preprocessor']>().toEqualTypeOf<PreprocessorName | undefined>();
  });

  it('uploads image and inpaint mask bytes as multipart parts referenced by attachment:NAME', async () => {
    const { contour, seen } = client(() =>
      Response.json({
        type: 'inpaint',
        preprocessor: 'inpaint',
        width: 64,
        height: 64,
        url: 'http://api.test/m.png',
        stage: 'edge',
      }),
    );
    const image = new Uint8Array([1, 2, 3]);
    const mask = new Blob([new Uint8Array([9, 9])]);
    const params: PreprocessParams = { preprocessor: 'inpaint', image, mask, image_resolution: 256 };
    await contour.preprocess(params);
    const form = await seen[0]!.formData();
    expect(JSON.parse(form.get('request') as string)).toEqual({
      preprocessor: 'inpaint',
      image: 'attachment:preprocess_0_image',
      mask: 'attachment:preprocess_0_mask',
      image_resolution: 256,
    });
    expect(new Uint8Array(await (form.get('preprocess_0_image') as Blob).arrayBuffer())).toEqual(image);
    expect(new Uint8Array(await (form.get('preprocess_0_mask') as Blob).arrayBuffer())).toEqual(
      new Uint8Array([9, 9]),
    );
    // The caller's object is left as it was.
    expect(params.mask).toBe(mask);
  });

  it('a worker without the weights is an ApiError model_not_available naming the file', async () => {
    const { contour } = client(
      () =>
        new Response(
          JSON.stringify({
            error: {
              code: 'model_not_available',
              message: 'the depth_midas preprocessor needs dpt_hybrid-midas-501f0c75.pt in /weights',
              details: [{ path: 'preprocessor', message: 'needs dpt_hybrid-midas-501f0c75.pt' }],
            },
          }),
          { status: 422, headers: { 'content-type': 'application/json' } },
        ),
    );
    const error = await contour
      .preprocess({ preprocessor: 'depth_midas', image: 'https://x.test/a.png' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: 'model_not_available' });
    expect((error as ApiError).message).toContain('dpt_hybrid-midas-501f0c75.pt');
  });

  it('only takes preprocessor names of the catalogue (a type error otherwise)', () => {
    // @ts-expect-error: not a preprocessor name
    const wrong: PreprocessParams = { preprocessor: 'depth', image: 'x' };
    expect(wrong.preprocessor).toBe('depth');
  });
});
