import type { Image8 } from '@contour/shared/preprocess';
import type { ModelEngine } from '../engine/model-engine.ts';
import type { Network } from '../engine/network.ts';

/** Parameters of one preprocessor call, already validated by the shared contract (defaults applied). */
export type PreprocessorParams = Readonly<Record<string, number | boolean | string>>;

/** OpenPose keypoints in the OpenPose JSON format (what A1111's extension returns beside the map). */
export interface OpenPoseKeypoints {
  canvas_width: number;
  canvas_height: number;
  people: {
    /** [x, y, confidence] * 18 (COCO order), pixels of the detect-resolution image; missing points 0,0,0. */
    pose_keypoints_2d: number[];
    /** [x, y, confidence] * 70, or absent without face detection. */
    face_keypoints_2d?: number[];
    /** [x, y, confidence] * 21 each, or absent without hand detection. */
    hand_left_keypoints_2d?: number[];
    hand_right_keypoints_2d?: number[];
  }[];
}

/** What a preprocessor returns: the detected map (RGB, HWC3 as the original returns it) and, for pose, keypoints. */
export interface PreprocessorResult {
  map: Image8<3>;
  keypoints?: OpenPoseKeypoints;
}

/** Loaded annotator weights, shared by the preprocessors that use them (softedge_hed and softedge_hedsafe). */
export interface AnnotatorModel {
  /** Bytes of weights held in tfjs tensors (the LRU budget multiplies by the engine's weight copies). */
  readonly bytes: number;
  /** The networks it runs, so an engine can release their sessions when the model is evicted. */
  readonly networks: readonly Network[];
  dispose(): void;
}

/** How an annotator model is loaded: its weight files (names as in lllyasviel/Annotators) and loader. */
export interface AnnotatorModelSpec<M extends AnnotatorModel = AnnotatorModel> {
  /** Cache key shared by the preprocessors using the same weights, e.g. `hed`. */
  key: string;
  /** Weight file names this model needs, e.g. `['ControlNetHED.pth']`. */
  files: readonly string[];
  /** Loads from absolute paths by file name (`.pth`/`.pt` PyTorch checkpoints or `.safetensors`). */
  load(paths: Readonly<Record<string, string>>): Promise<M>;
}

/** Input of {@link PreprocessorDefinition.run}. */
export interface PreprocessorInput<M> {
  engine: ModelEngine;
  /**
   * RGB image as the original app hands it to the annotator: HWC3 and already `resize_image(img,
   * detect_resolution)`-ed by the caller. The preprocessor does the annotator's own resizing and padding.
   */
  image: Image8<3>;
  params: PreprocessorParams;
  /** The loaded model (undefined for model-free preprocessors). */
  model: M;
}

/** One preprocessor as users name it (ControlNet 1.1 / A1111 names: `softedge_hed`, `depth_midas`...). */
export interface PreprocessorDefinition<M extends AnnotatorModel = AnnotatorModel> {
  name: string;
  /** Absent for model-free preprocessors (shuffle, tile_resample...). */
  model?: AnnotatorModelSpec<M>;
  run(input: PreprocessorInput<M>): Promise<PreprocessorResult>;
}
