import { z } from 'zod';
import { CONTROL_TYPE_PREPROCESSORS, mergedParamsSchema } from './preprocessors.ts';

/** Every ControlNet 1.0/1.1 control type the API knows (whether or not a deployment serves its head). */
export const CONTROL_TYPES = [
  'canny',
  'depth',
  'hed',
  'softedge',
  'mlsd',
  'normal',
  'openpose',
  'seg',
  'scribble',
  'lineart',
  'lineart_anime',
  'shuffle',
  'tile',
  'inpaint',
  'ip2p',
] as const;

/** A control type: which ControlNet head conditions the generation. */
export const ControlTypeSchema = z.enum(CONTROL_TYPES).meta({ id: 'ControlType' });
export type ControlType = z.infer<typeof ControlTypeSchema>;

/**
 * How a control type's input image becomes a control map.
 * - `cheap`: plain image operations in `@contour/shared/preprocess`; the edge runs them on small images,
 *   the worker on large ones (same code).
 * - `network`: needs an annotator network (HED, MiDaS, OpenPose...) that only a worker can host.
 * - `identity`: the image itself is the control (tile, ip2p).
 */
export type PreprocessorKind = 'cheap' | 'network' | 'identity';

/** Per-type facts the edge, worker and SDK all need. */
export interface ControlTypeInfo {
  /** Short human description. */
  description: string;
  /** How the control map is made from the input image. */
  preprocessor: PreprocessorKind;
  /** Whether `preprocess` defaults to true: only when the system can always make the map itself. */
  preprocessByDefault: boolean;
  /** Name of the ControlNet 1.1 checkpoint for this type (lllyasviel/ControlNet-v1-1). */
  checkpoint: string;
}

/** The table behind {@link ControlTypeInfo}, one row per control type. */
export const CONTROL_TYPE_INFO: Record<ControlType, ControlTypeInfo> = {
  canny: {
    description: 'Canny edges (cv2.Canny, white on black)',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11p_sd15_canny',
  },
  depth: {
    description: 'Depth map (MiDaS), near is bright',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11f1p_sd15_depth',
  },
  hed: {
    description: 'HED soft edges',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_softedge',
  },
  softedge: {
    description: 'Soft edges (HED / PiDiNet)',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_softedge',
  },
  mlsd: {
    description: 'M-LSD straight lines',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_mlsd',
  },
  normal: {
    description: 'Surface normal map',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_normalbae',
  },
  openpose: {
    description: 'OpenPose skeleton',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_openpose',
  },
  seg: {
    description: 'Semantic segmentation (ADE20K palette)',
    preprocessor: 'network',
    preprocessByDefault: false,
    checkpoint: 'control_v11p_sd15_seg',
  },
  scribble: {
    description: 'Scribble: dark strokes on light paper become white on black',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11p_sd15_scribble',
  },
  lineart: {
    description: 'Line art; black-on-white drawings are inverted',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11p_sd15_lineart',
  },
  lineart_anime: {
    description: 'Anime line art; black-on-white drawings are inverted',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11p_sd15s2_lineart_anime',
  },
  shuffle: {
    description: 'Content shuffle (random smooth remap of the image)',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11e_sd15_shuffle',
  },
  tile: {
    description: 'Tile / detail: the image itself',
    preprocessor: 'identity',
    preprocessByDefault: false,
    checkpoint: 'control_v11f1e_sd15_tile',
  },
  inpaint: {
    description: 'Inpaint: masked pixels are set to -1',
    preprocessor: 'cheap',
    preprocessByDefault: true,
    checkpoint: 'control_v11p_sd15_inpaint',
  },
  ip2p: {
    description: 'Instruct pix2pix: the image itself',
    preprocessor: 'identity',
    preprocessByDefault: false,
    checkpoint: 'control_v11e_sd15_ip2p',
  },
};

/**
 * The params schema of one control type, for documentation and the first check: every key any of its
 * preprocessors takes, all optional. The unit is then checked against the preprocessor it names (or its type's
 * default), which applies that preprocessor's defaults and refuses keys it does not take.
 */
export function controlParamsSchema(type: ControlType) {
  return mergedParamsSchema(CONTROL_TYPE_PREPROCESSORS[type]).prefault({});
}
