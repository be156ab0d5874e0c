import type { Image8 } from '@contour/shared/preprocess';
import type { ModelEngine } from '../../engine/model-engine.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { annotatorLayout, loadAnnotatorWeights, paramBytes } from '../annotator-weights.ts';
import type {
  AnnotatorModel,
  AnnotatorModelSpec,
  OpenPoseKeypoints,
  PreprocessorDefinition,
} from '../types.ts';
import { drawPose, type Pose } from './draw.ts';
import { BodyNetwork, CpmNetwork } from './network.ts';
import { type DetectedPose, detectPose } from './pipeline.ts';

/** Weight files as lllyasviel/Annotators names them. */
export const BODY_FILE = 'body_pose_model.pth';
export const HAND_FILE = 'hand_pose_model.pth';
export const FACE_FILE = 'facenet.pth';

/** Loaded OpenPose networks: the body always, the hand and face networks when the preprocessor draws them. */
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

/**
 * The checkpoints' own keys. body/hand files hold `conv1_1.weight`... which util.transfer() maps onto the model's
 * `model0.conv1_1.weight` by dropping the block prefix, ignoring any other key (so extra keys are not "unexpected"
 * here); facenet.pth is FaceNet's state dict, loaded strictly by load_state_dict.
 */
const TRANSFER_KEYS: KeyMapping = { fileKeys: (name) => [name], belongs: () => false };

/** Loads body_pose_model.pth and, as asked, hand_pose_model.pth and facenet.pth. */
export async function loadOpenpose(
  paths: Readonly<Record<string, string>>,
  parts: { hand: boolean; face: boolean },
): Promise<OpenposeModel> {
  const loaded: (BodyNetwork | CpmNetwork)[] = [];
  try {
    const body = new BodyNetwork();
    await loadAnnotatorWeights(body.params, BODY_FILE, paths, TRANSFER_KEYS);
    loaded.push(body);
    let hand: CpmNetwork | undefined;
    if (parts.hand) {
      hand = new CpmNetwork('openpose-hand', 22);
      await loadAnnotatorWeights(hand.params, HAND_FILE, paths, TRANSFER_KEYS);
      loaded.push(hand);
    }
    let face: CpmNetwork | undefined;
    if (parts.face) {
      face = new CpmNetwork('openpose-face', 71);
      await loadAnnotatorWeights(face.params, FACE_FILE, paths, annotatorLayout());
    }
    return new OpenposeModel(body, hand, face);
  } catch (error) {
    for (const n of loaded) n.dispose();
    throw error;
  }
}

/** The model spec of a preprocessor: the body file plus the hand/face files it draws (cache key = its name). */
function openposeSpec(
  key: string,
  parts: { hand: boolean; face: boolean },
): AnnotatorModelSpec<OpenposeModel> {
  return {
    key,
    files: [BODY_FILE, ...(parts.hand ? [HAND_FILE] : []), ...(parts.face ? [FACE_FILE] : [])],
    load: (paths) => loadOpenpose(paths, parts),
  };
}

/** What a preprocessor detects and draws besides the body (hand and face boxes come from the body). */
export interface OpenposeOptions {
  hand: boolean;
  face: boolean;
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
  const canvas = drawPose(poseDict(detected, H, W), H, W);
  return {
    map: { width: W, height: H, channels: 3, data: canvas.data },
    keypoints: poseKeypoints(detected, H, W, options),
    detected,
  };
}

function openposePreprocessor(name: string, options: OpenposeOptions): PreprocessorDefinition<OpenposeModel> {
  return {
    name,
    model: openposeSpec(name, options),
    async run({ engine, image, model }) {
      const { map, keypoints } = await runOpenpose(engine, model, image, options);
      return { map, keypoints };
    },
  };
}

/**
 * openpose (body), openpose_full (body + hands + face: the 1.1 app's "Openpose_Full", hand_and_face=True), and
 * A1111's openpose_hand (body + hands) and openpose_face (body + face). No parameters beyond detect_resolution.
 */
// biome-ignore lint/suspicious/noExplicitAny: the registry holds definitions of every model type.
export const openposePreprocessors: PreprocessorDefinition<any>[] = [
  openposePreprocessor('openpose', { hand: false, face: false }),
  openposePreprocessor('openpose_hand', { hand: true, face: false }),
  openposePreprocessor('openpose_face', { hand: false, face: true }),
  openposePreprocessor('openpose_full', { hand: true, face: true }),
];
