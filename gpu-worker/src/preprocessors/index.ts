import { hedPreprocessors } from './hed/index.ts';
import { lineartPreprocessors } from './lineart/index.ts';
import { lineartAnimePreprocessors } from './lineart_anime/index.ts';
import { midasPreprocessors } from './midas/index.ts';
import { mlsdPreprocessors } from './mlsd/index.ts';
import { normalbaePreprocessors } from './normalbae/index.ts';
import { openposePreprocessors } from './openpose/index.ts';
import { pidinetPreprocessors } from './pidinet/index.ts';
import { segPreprocessors } from './seg/index.ts';
import type { PreprocessorDefinition } from './types.ts';

/** Every network preprocessor this worker build has (each family's folder exports its definitions). */
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own model type
export const PREPROCESSOR_DEFINITIONS: readonly PreprocessorDefinition<any>[] = [
  ...midasPreprocessors,
  ...hedPreprocessors,
  ...pidinetPreprocessors,
  ...mlsdPreprocessors,
  ...lineartPreprocessors,
  ...lineartAnimePreprocessors,
  ...normalbaePreprocessors,
  ...segPreprocessors,
  ...openposePreprocessors,
];

export { PreprocessorRegistry, type PreprocessorStatus, PreprocessorUnavailableError } from './registry.ts';
export type { OpenPoseKeypoints, PreprocessorDefinition, PreprocessorResult } from './types.ts';
