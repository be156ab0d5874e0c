import type { PreprocessorDefinition } from './types.ts';

/** Every network preprocessor this worker build has (each family's folder exports its definitions). */
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own model type
export const PREPROCESSOR_DEFINITIONS: readonly PreprocessorDefinition<any>[] = [];

export { PreprocessorRegistry, PreprocessorUnavailableError, type PreprocessorStatus } from './registry.ts';
export type { OpenPoseKeypoints, PreprocessorDefinition, PreprocessorResult } from './types.ts';
