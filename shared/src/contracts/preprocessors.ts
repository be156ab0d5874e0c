import { z } from 'zod';
import type { ControlType } from './controls.ts';

/**
 * Every preprocessor the API offers, named as ControlNet 1.1 and A1111's extension name them. `edge` ones are
 * plain image code in `@contour/shared/preprocess` (the edge runs them on images within its CPU budget, the worker
 * on larger ones); `worker` ones run an annotator network on the GPU pool.
 */
export const PREPROCESSOR_NAMES = [
  'canny',
  'scribble',
  'invert',
  'shuffle',
  'tile_resample',
  'inpaint',
  'depth_midas',
  'depth_midas_small',
  'softedge_hed',
  'softedge_hedsafe',
  'softedge_pidinet',
  'softedge_pidisafe',
  'openpose',
  'openpose_hand',
  'openpose_face',
  'openpose_full',
  'mlsd',
  'lineart_realistic',
  'lineart_coarse',
  'lineart_anime',
  'normal_bae',
  'seg_uniformer',
] as const;

/** One preprocessor name. */
export type PreprocessorName = (typeof PREPROCESSOR_NAMES)[number];
export const PreprocessorNameSchema = z.enum(PREPROCESSOR_NAMES).meta({ id: 'Preprocessor' });

/** Default annotator resolution (the original apps' detect_resolution). */
export const DEFAULT_DETECT_RESOLUTION = 512;
/** Bounds of detect_resolution (A1111's processor_res slider). */
export const MIN_DETECT_RESOLUTION = 64;
export const MAX_DETECT_RESOLUTION = 2048;

const detectResolution = z
  .int()
  .min(MIN_DETECT_RESOLUTION)
  .max(MAX_DETECT_RESOLUTION)
  .default(DEFAULT_DETECT_RESOLUTION)
  .describe('Short side the image is resized to (multiple-of-64 rounding) before the annotator runs.');

/** Canny thresholds as cv2.Canny takes them; defaults are the original apps' 100/200. */
export const CannyParamsSchema = z
  .object({
    low: z.int().min(1).max(255).default(100),
    high: z.int().min(1).max(255).default(200),
  })
  .strict()
  .refine((p) => p.low <= p.high, { path: ['low'], message: 'low threshold must be <= high threshold' })
  .meta({ id: 'CannyParams' });

/** Scribble binarisation threshold (the original uses min over channels < 127). */
export const ScribbleParamsSchema = z
  .object({ threshold: z.int().min(1).max(254).default(127) })
  .strict()
  .meta({ id: 'ScribbleParams' });

/** Only the annotator resolution (most network preprocessors). */
export const DetectParamsSchema = z
  .object({ detect_resolution: detectResolution })
  .strict()
  .meta({ id: 'DetectParams' });

/** M-LSD: annotator resolution and the 1.1 app's value / distance thresholds. */
export const MlsdParamsSchema = z
  .object({
    detect_resolution: detectResolution,
    value_threshold: z.number().min(0.01).max(2).default(0.1).describe('Line score threshold (thr_v).'),
    distance_threshold: z.number().min(0.01).max(20).default(0.1).describe('Minimum line length (thr_d).'),
  })
  .strict()
  .meta({ id: 'MlsdParams' });

/** Content shuffle: the random remap's seed (the generation's seed when absent, as the 1.1 app does). */
export const ShuffleParamsSchema = z
  .object({ seed: z.int().min(0).max(0xffff_ffff).optional() })
  .strict()
  .meta({ id: 'ShuffleParams' });

/** Tile resample: downsampling factor (A1111's tile_resample "Down Sampling Rate"; 1 = the image itself). */
export const TileParamsSchema = z
  .object({ down_sampling_rate: z.number().min(1).max(8).default(1) })
  .strict()
  .meta({ id: 'TileParams' });

/** Preprocessors without parameters accept only `{}`. */
export const NoParamsSchema = z.object({}).strict().meta({ id: 'NoParams' });

/** Where a preprocessor runs. */
export type PreprocessorStage = 'edge' | 'worker';

/** Facts about one preprocessor. */
export interface PreprocessorInfo {
  /** The ControlNet head its map is made for. */
  controlType: ControlType;
  stage: PreprocessorStage;
  description: string;
  params: z.ZodType;
  /** Annotator checkpoints it needs (lllyasviel/Annotators file names); empty for edge ones. */
  weights: readonly string[];
}

const network = (
  controlType: ControlType,
  description: string,
  weights: readonly string[],
  params: z.ZodType = DetectParamsSchema,
): PreprocessorInfo => ({ controlType, stage: 'worker', description, params, weights });

/** The table behind {@link PreprocessorInfo}. */
export const PREPROCESSORS: Record<PreprocessorName, PreprocessorInfo> = {
  canny: {
    controlType: 'canny',
    stage: 'edge',
    description: 'Canny edges (cv2.Canny)',
    params: CannyParamsSchema,
    weights: [],
  },
  scribble: {
    controlType: 'scribble',
    stage: 'edge',
    description: 'Dark strokes on light paper become white on black',
    params: ScribbleParamsSchema,
    weights: [],
  },
  invert: {
    controlType: 'lineart',
    stage: 'edge',
    description: 'Black-on-white line drawings inverted to white on black',
    params: NoParamsSchema,
    weights: [],
  },
  shuffle: {
    controlType: 'shuffle',
    stage: 'edge',
    description: 'Content shuffle: a seeded random smooth remap of the image (ControlNet 1.1)',
    params: ShuffleParamsSchema,
    weights: [],
  },
  tile_resample: {
    controlType: 'tile',
    stage: 'edge',
    description: 'The image itself, optionally downsampled (tile / upscale head)',
    params: TileParamsSchema,
    weights: [],
  },
  inpaint: {
    controlType: 'inpaint',
    stage: 'edge',
    description: 'The image with the masked pixels marked (-1 in the control, transparent in the preview)',
    params: NoParamsSchema,
    weights: [],
  },
  depth_midas: network('depth', 'MiDaS DPT-Hybrid relative depth, near is bright', [
    'dpt_hybrid-midas-501f0c75.pt',
  ]),
  depth_midas_small: network('depth', 'MiDaS v2.1 small: fast, lower-quality depth', [
    'midas_v21_small_256.pt',
  ]),
  softedge_hed: network('softedge', 'HED soft edges', ['ControlNetHED.pth']),
  softedge_hedsafe: network('softedge', 'HED soft edges, quantised (safe)', ['ControlNetHED.pth']),
  softedge_pidinet: network('softedge', 'PiDiNet soft edges', ['table5_pidinet.pth']),
  softedge_pidisafe: network('softedge', 'PiDiNet soft edges, quantised (safe)', ['table5_pidinet.pth']),
  openpose: network('openpose', 'OpenPose body skeleton', ['body_pose_model.pth']),
  openpose_hand: network('openpose', 'OpenPose body and hands', [
    'body_pose_model.pth',
    'hand_pose_model.pth',
  ]),
  openpose_face: network('openpose', 'OpenPose body and face', ['body_pose_model.pth', 'facenet.pth']),
  openpose_full: network('openpose', 'OpenPose body, hands and face', [
    'body_pose_model.pth',
    'hand_pose_model.pth',
    'facenet.pth',
  ]),
  mlsd: network('mlsd', 'M-LSD straight lines', ['mlsd_large_512_fp32.pth'], MlsdParamsSchema),
  lineart_realistic: network('lineart', 'Line art from photos (realistic model)', ['sk_model.pth']),
  lineart_coarse: network('lineart', 'Line art from photos, coarse strokes', ['sk_model2.pth']),
  lineart_anime: network('lineart_anime', 'Anime-style line art', ['netG.pth']),
  normal_bae: network('normal', 'Surface normals (NormalBAE)', ['scannet.pt']),
  seg_uniformer: network('seg', 'Semantic segmentation, ADE20K palette (UniFormer)', [
    'upernet_global_small.pth',
  ]),
};

/**
 * The preprocessors each control type accepts, default first (the default keeps each type's behaviour from before
 * preprocessors were named: canny, scribble and invert for line art).
 */
export const CONTROL_TYPE_PREPROCESSORS: Record<ControlType, readonly PreprocessorName[]> = {
  canny: ['canny'],
  depth: ['depth_midas', 'depth_midas_small'],
  hed: ['softedge_hed', 'softedge_hedsafe'],
  softedge: ['softedge_hed', 'softedge_hedsafe', 'softedge_pidinet', 'softedge_pidisafe'],
  mlsd: ['mlsd'],
  normal: ['normal_bae'],
  openpose: ['openpose', 'openpose_hand', 'openpose_face', 'openpose_full'],
  seg: ['seg_uniformer'],
  scribble: ['scribble'],
  lineart: ['invert', 'lineart_realistic', 'lineart_coarse'],
  lineart_anime: ['invert', 'lineart_anime'],
  shuffle: ['shuffle'],
  tile: ['tile_resample'],
  inpaint: ['inpaint'],
  ip2p: [],
};

/** The preprocessor a control type uses when the request names none (undefined: the type has none). */
export function defaultPreprocessor(type: ControlType): PreprocessorName | undefined {
  return CONTROL_TYPE_PREPROCESSORS[type][0];
}

/** Whether a preprocessor runs an annotator network (worker only). */
export function isNetworkPreprocessor(name: PreprocessorName): boolean {
  return PREPROCESSORS[name].stage === 'worker';
}

/** Issue list of a params check, paths relative to `params`. */
export type ParamsIssue = { path: (string | number)[]; message: string };

/**
 * Validates and completes a preprocessor's params (defaults applied); returns the issues instead when they are
 * invalid, with paths relative to `params`.
 */
export function parsePreprocessorParams(
  name: PreprocessorName,
  params: unknown,
): { ok: true; params: Record<string, number> } | { ok: false; issues: ParamsIssue[] } {
  const parsed = PREPROCESSORS[name].params.safeParse(params ?? {});
  if (parsed.success) return { ok: true, params: parsed.data as Record<string, number> };
  return {
    ok: false,
    issues: parsed.error.issues.map((issue) => ({
      path: issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
      message: issue.message,
    })),
  };
}

/** numpy's np.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/**
 * A1111's pixel-perfect annotator resolution: the detect resolution at which the map needs no rescale to reach
 * the output size, for the "crop and resize" mode (round(max(outH / H, outW / W) * min(H, W))), clamped to the
 * detect_resolution bounds.
 */
export function pixelPerfectResolution(
  input: { width: number; height: number },
  output: { width: number; height: number },
): number {
  const k = Math.max(output.height / input.height, output.width / input.width);
  const estimate = roundHalfEven(k * Math.min(input.width, input.height));
  return Math.min(MAX_DETECT_RESOLUTION, Math.max(MIN_DETECT_RESOLUTION, estimate));
}

/**
 * Every key the named preprocessors' params take, all optional and without defaults (defaults come from the one
 * preprocessor a request ends up naming): the documentation schema of a params field and its first check.
 */
export function mergedParamsSchema(names: readonly PreprocessorName[]) {
  const shape: Record<string, z.ZodType> = {};
  for (const name of names) {
    for (const [key, field] of Object.entries((PREPROCESSORS[name].params as z.ZodObject).shape)) {
      const bare = field instanceof z.ZodDefault ? (field.unwrap() as z.ZodType) : (field as z.ZodType);
      shape[key] = bare.optional();
    }
  }
  return z.object(shape).strict();
}
