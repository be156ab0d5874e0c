import type { ControlType, PreprocessorName, PreprocessorStage } from '@contour/shared/contracts';
import catalogue from './catalogue.gen.json' with { type: 'json' };

/** One parameter of a preprocessor, as its API schema bounds it. */
export interface PreprocessorParamSpec {
  type: 'integer' | 'number';
  minimum?: number;
  maximum?: number;
  /** Applied by the API when the parameter is left out (none: derived, e.g. shuffle's seed). */
  default?: number;
  description?: string;
}

/** Facts about one preprocessor (the API's catalogue, without its zod schemas). */
export interface PreprocessorFacts {
  /** The control type (ControlNet head) its map is made for. */
  controlType: ControlType;
  /** `edge`: plain image code the API runs anywhere; `worker`: an annotator network on the GPU pool. */
  stage: PreprocessorStage;
  description: string;
  /** Annotator checkpoints it needs (lllyasviel/Annotators file names); empty for edge ones. */
  weights: readonly string[];
  /** Its `params` keys (network ones take `detect_resolution`). */
  params: Readonly<Record<string, PreprocessorParamSpec>>;
}

/** Every preprocessor the API offers, by name (generated from the API's contracts: `npm run catalogue`). */
export const PREPROCESSORS = catalogue.preprocessors as Readonly<Record<PreprocessorName, PreprocessorFacts>>;

/** Every preprocessor name, in the API's order. */
export const PREPROCESSOR_NAMES = Object.keys(PREPROCESSORS) as readonly PreprocessorName[];

/** The preprocessors each control type accepts, its default first (none: the image itself is the control). */
export const CONTROL_TYPE_PREPROCESSORS = catalogue.controlTypes as Readonly<
  Record<ControlType, readonly PreprocessorName[]>
>;

/** Default annotator resolution of network preprocessors (`params.detect_resolution`). */
export const DEFAULT_DETECT_RESOLUTION: number = catalogue.detectResolution.default;
/** Smallest `params.detect_resolution`. */
export const MIN_DETECT_RESOLUTION: number = catalogue.detectResolution.minimum;
/** Largest `params.detect_resolution`. */
export const MAX_DETECT_RESOLUTION: number = catalogue.detectResolution.maximum;

/** The preprocessors a control unit of `type` may name, its default first. */
export function preprocessorsFor(type: ControlType): readonly PreprocessorName[] {
  return CONTROL_TYPE_PREPROCESSORS[type] ?? [];
}

/** The preprocessor a unit of `type` gets when it names none (undefined: the type has none). */
export function defaultPreprocessor(type: ControlType): PreprocessorName | undefined {
  return preprocessorsFor(type)[0];
}

/** Whether `name` runs an annotator network on the GPU pool (it takes `detect_resolution` / `pixel_perfect`). */
export function isNetworkPreprocessor(name: PreprocessorName): boolean {
  return PREPROCESSORS[name]?.stage === 'worker';
}

/** Whether `value` is a preprocessor name the API knows. */
export function isPreprocessorName(value: unknown): value is PreprocessorName {
  return typeof value === 'string' && Object.hasOwn(PREPROCESSORS, value);
}
