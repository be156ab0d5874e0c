import type { Image8 } from '@contour/shared/preprocess';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type {
  AnnotatorModel,
  AnnotatorModelSpec,
  OpenPoseKeypoints,
  PreprocessorDefinition,
} from '../types.ts';
import { drawPose, type Pose } from './draw.ts';
import { BodyNetwork, CpmNetwork } from './network.ts';
import { type DetectedPose, detectPose } from './pipeline.ts';
import { loadOpenposeParams, paramBytes } from './weights.ts';

/** Weight files as lllyasviel/Annotators names them. */
export const BODY_FILE = 'body_pose_model.pth';
export const HAND_FILE = 'hand_pose_model.pth';
export const FACE_FILE = 'facenet.pth';

/** Loaded OpenPose networks: the body always, hand and face for the full model. */
export class OpenposeModel implements AnnotatorModel {
  readonly networks: readonly (BodyNetwork | CpmNetwork)[];
  readonly bytes: number;

  constructor(
    readonly body: BodyNetwork,
    readonly hand?: CpmNetwork,
    readonly face?: CpmNetwork,
  ) {
    this.networks = [body, hand, face].filter((n) => n !== undefined);
    this.bytes = this.networks.reduce((sum, n) => sum + paramBytes(n.params), 0);
  }

  dispose(): void {
    for (const n of this.networks) n.dispose();
  }
}

/** Loads body_pose_model.pth and, with `full`, hand_pose_model.pth and facenet.pth. */
export async function loadOpenpose(
  paths: Readonly<Record<string, string>>,
  full: boolean,
): Promise<OpenposeModel> {
  const body = new BodyNetwork();
  const loaded: (BodyNetwork | CpmNetwork)[] = [];
  try {
    await loadOpenposeParams(body.params, BODY_FILE, paths[BODY_FILE], false);
    loaded.push(body);
    if (!full) return new OpenposeModel(body);
    const hand = new CpmNetwork('openpose-hand', 22);
    await loadOpenposeParams(hand.params, HAND_FILE, paths[HAND_FILE], false);
    loaded.push(hand);
    const face = new CpmNetwork('openpose-face', 71);
    await loadOpenposeParams(face.params, FACE_FILE, paths[FACE_FILE], true);
    return new OpenposeModel(body, hand, face);
  } catch (error) {
    for (const n of loaded) n.dispose();
    throw error;
  }
}

/** Body-only model (cache key `openpose`). */
export const openposeBodySpec: AnnotatorModelSpec<OpenposeModel> = {
  key: 'openpose',
  files: [BODY_FILE],
  load: (paths) => loadOpenpose(paths, false),
};

/** Body + hand + face model (cache key `openpose_full`). */
export const openposeFullSpec: AnnotatorModelSpec<OpenposeModel> = {
  key: 'openpose_full',
  files: [BODY_FILE, HAND_FILE, FACE_FILE],
  load: (paths) => loadOpenpose(paths, true),
};

/** What a preprocessor detects and draws (the body is always detected: hand and face boxes come from it). */
export interface OpenposeOptions {
  hand: boolean;
  face: boolean;
  /** Draw the body (false only for A1111's openpose_faceonly). */
  drawBody?: boolean;
}

/** float32((p < 1e-6 ? -1 : p + offset) / size), the original's normalisation of hand/face peaks. */
function normalisePeak(p: number, offset: number, size: number): number {
  return Math.fround((p < 1e-6 ? -1 : p + offset) / size);
}

/** The pose dict OpenposeDetector draws from: candidate and peaks normalised to [0, 1] as the original does. */
export function poseDict(detected: DetectedPose, H: number, W: number): Pose {
  const candidate = detected.body.candidate.map((c) => [c[0]! / W, c[1]! / H]);
  const hands = detected.hands.map(({ box, peaks }) =>
    peaks.map(([x, y]) => [normalisePeak(x, box.x, W), normalisePeak(y, box.y, H)]),
  );
  // a face without any peak is dropped (`peaks.ndim == 2` fails on an empty array)
  const faces = detected.faces
    .map(({ box, peaks }) => ({ box, found: peaks.filter((p) => p !== null) }))
    .filter(({ found }) => found.length > 0)
    .map(({ box, found }) => found.map(([x, y]) => [normalisePeak(x, box.x, W), normalisePeak(y, box.y, H)]));
  return { bodies: { candidate, subset: detected.body.subset }, hands, faces };
}

/** The detection in OpenPose JSON (A1111 format): pixel coordinates, confidence 1 for found points, 0,0,0 for missing. */
export function poseKeypoints(
  detected: DetectedPose,
  H: number,
  W: number,
  options: OpenposeOptions,
): OpenPoseKeypoints {
  const people = detected.body.subset.map((row, person) => {
    const pose: number[] = [];
    for (let i = 0; i < 18; i++) {
      const idx = row[i]!;
      if (idx === -1) pose.push(0, 0, 0);
      else pose.push(detected.body.candidate[idx]![0]!, detected.body.candidate[idx]![1]!, 1);
    }
    const entry: OpenPoseKeypoints['people'][number] = { pose_keypoints_2d: pose };
    if (options.hand) {
      for (const { box, peaks } of detected.hands) {
        if (box.person !== person) continue;
        const flat = peaks.flatMap(([x, y]) =>
          x < 1e-6 || y < 1e-6 ? [0, 0, 0] : [x + box.x, y + box.y, 1],
        );
        if (box.isLeft) entry.hand_left_keypoints_2d = flat;
        else entry.hand_right_keypoints_2d = flat;
      }
    }
    if (options.face) {
      const face = detected.faces.find((f) => f.box.person === person);
      if (face?.peaks.some((p) => p !== null)) {
        // the 70 landmark channels in order (channel 70 is the background), 0,0,0 where none was found
        entry.face_keypoints_2d = face.peaks
          .slice(0, 70)
          .flatMap((p) =>
            p === null || p[0] < 1e-6 || p[1] < 1e-6 ? [0, 0, 0] : [p[0] + face.box.x, p[1] + face.box.y, 1],
          );
      }
    }
    return entry;
  });
  return { canvas_width: W, canvas_height: H, people };
}

/** Runs OpenposeDetector on an RGB image (already HWC3 + resize_image'd): the drawn map and the keypoints. */
export async function runOpenpose(
  engine: ModelEngine,
  model: OpenposeModel,
  image: Image8<3>,
  options: OpenposeOptions,
): Promise<{ map: Image8<3>; keypoints: OpenPoseKeypoints; detected: DetectedPose }> {
  if ((options.hand && !model.hand) || (options.face && !model.face)) {
    throw new Error('openpose: hands/faces need the full model (hand_pose_model.pth, facenet.pth)');
  }
  const { width: W, height: H } = image;
  const detected = await detectPose(
    engine,
    {
      body: model.body,
      hand: options.hand ? model.hand : undefined,
      face: options.face ? model.face : undefined,
    },
    { data: image.data, width: W, height: H },
  );
  const canvas = drawPose(poseDict(detected, H, W), H, W, {
    body: options.drawBody ?? true,
    hand: options.hand,
    face: options.face,
  });
  return {
    map: { width: W, height: H, channels: 3, data: canvas.data },
    keypoints: poseKeypoints(detected, H, W, options),
    detected,
  };
}

function openposePreprocessor(
  name: string,
  spec: AnnotatorModelSpec<OpenposeModel>,
  options: OpenposeOptions,
): PreprocessorDefinition<OpenposeModel> {
  return {
    name,
    model: spec,
    async run({ engine, image, model }) {
      const { map, keypoints } = await runOpenpose(engine, model, image, options);
      return { map, keypoints };
    },
  };
}

/**
 * openpose (body), openpose_full (body + hands + face: the 1.1 app's "Openpose_Full", hand_and_face=True), and
 * A1111's openpose_hand (body + hands), openpose_face (body + face) and openpose_faceonly (face drawn alone). No
 * parameters beyond detect_resolution.
 */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds definitions of every model type.
export const openposePreprocessors: PreprocessorDefinition<any>[] = [
  openposePreprocessor('openpose', openposeBodySpec, { hand: false, face: false }),
  openposePreprocessor('openpose_full', openposeFullSpec, { hand: true, face: true }),
  openposePreprocessor('openpose_hand', openposeFullSpec, { hand: true, face: false }),
  openposePreprocessor('openpose_face', openposeFullSpec, { hand: false, face: true }),
  openposePreprocessor('openpose_faceonly', openposeFullSpec, { hand: false, face: true, drawBody: false }),
];
