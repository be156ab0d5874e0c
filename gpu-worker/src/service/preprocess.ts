import type { WorkerPreprocessRequest, WorkerPreprocessResult } from '@contour/shared/contracts';
import { encodePng } from '@contour/shared/preprocess';
import { sha256Hex } from '@contour/shared/signing';
import type { OpenPoseKeypoints } from '../preprocessors/types.ts';
import { decodePool } from './decode-pool.ts';
import { JobError } from './errors.ts';
import { type FetchImageOptions, fetchImage, mapToSize, type RunPreprocessor } from './images.ts';

/** Scales OpenPose keypoints from the detect image to the returned map (confidences kept, missing points 0). */
export function scaleKeypoints(
  keypoints: OpenPoseKeypoints,
  width: number,
  height: number,
): OpenPoseKeypoints {
  const sx = width / keypoints.canvas_width;
  const sy = height / keypoints.canvas_height;
  const scale = (points: number[] | undefined) =>
    points?.map((v, i) => (i % 3 === 0 ? v * sx : i % 3 === 1 ? v * sy : v));
  return {
    canvas_width: width,
    canvas_height: height,
    people: keypoints.people.map((person) => {
      const scaled: OpenPoseKeypoints['people'][number] = {
        pose_keypoints_2d: scale(person.pose_keypoints_2d)!,
      };
      if (person.face_keypoints_2d) scaled.face_keypoints_2d = scale(person.face_keypoints_2d);
      if (person.hand_left_keypoints_2d) scaled.hand_left_keypoints_2d = scale(person.hand_left_keypoints_2d);
      if (person.hand_right_keypoints_2d)
        scaled.hand_right_keypoints_2d = scale(person.hand_right_keypoints_2d);
      return scaled;
    }),
  };
}

/**
 * `POST /v1/preprocess` on the worker: fetches and checks the image, decodes it in the image thread at the detect
 * resolution, runs the annotator on the model thread, resizes the map to the requested size and encodes it.
 */
export async function runPreprocessRequest(
  request: WorkerPreprocessRequest,
  runPreprocessor: RunPreprocessor,
  fetchOptions: FetchImageOptions,
): Promise<WorkerPreprocessResult> {
  const started = performance.now();
  const bytes = await fetchImage(request.image.url, fetchOptions);
  const digest = await sha256Hex(bytes);
  if (digest !== request.image.sha256) {
    throw new JobError(
      'image_invalid',
      `image: sha256 ${digest} does not match the request's ${request.image.sha256}`,
    );
  }
  const fetched = performance.now();
  const resolution = request.params['detect_resolution'] ?? 512;
  const detect = await decodePool.detect({ bytes, resolution, what: 'image' });
  const decoded = performance.now();
  const result = await runPreprocessor(request.preprocessor, detect, request.params);
  const ran = performance.now();
  const map = mapToSize(result.map, request.width, request.height);
  const png = encodePng(map);
  const keypoints = result.keypoints ? scaleKeypoints(result.keypoints, map.width, map.height) : undefined;
  return {
    preprocessor: request.preprocessor,
    width: map.width,
    height: map.height,
    content_type: 'image/png',
    data_base64: Buffer.from(png).toString('base64'),
    ...(keypoints ? { keypoints } : {}),
    timings_ms: {
      fetch: fetched - started,
      decode: decoded - fetched,
      preprocess: ran - decoded,
      encode: performance.now() - ran,
    },
  };
}
