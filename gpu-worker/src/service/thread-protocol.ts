import type { ControlType } from '@contour/shared/contracts';
import type { Image8 } from '@contour/shared/preprocess';
import type { BackendChoice } from '../backend.ts';
import type { EngineInfo } from '../engine/model-engine.ts';
import type { PreprocessorStatus } from '../preprocessors/registry.ts';
import type { PreprocessorParams, PreprocessorResult } from '../preprocessors/types.ts';
import type { BuiltinModelName } from '../registry/registry.ts';
import type { SuggestedRequest } from '../training/builtin-model.ts';
import type { EngineJob, EngineJobResult, SamplingSettings } from './engine.ts';

/** Memory and head-cache numbers the model thread reports after every run (and at start). */
export interface EngineStats {
  tensors: number;
  tensorBytes: number;
  loadedHeads: ControlType[];
  headBytes: number;
  headBudgetBytes: number;
  headEvictions: number;
}

/** An error crossing the thread boundary. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string | undefined;
  retryable?: boolean | undefined;
}

/** HTTP thread -> model thread. */
export type ToThread =
  | {
      type: 'init';
      backend: BackendChoice | undefined;
      modelConfigPath: string | undefined;
      builtinHeads: ControlType[] | undefined;
      builtinModel: BuiltinModelName;
      /** Folder of the annotator checkpoints (network preprocessors); undefined = none installed. */
      annotatorDir: string | undefined;
      /** Memory budget of loaded annotator models (bytes; undefined = the heads' budget). */
      preprocessorBudgetBytes: number | undefined;
    }
  | { type: 'preprocess'; id: number; name: string; image: Image8<3>; params: PreprocessorParams }
  | {
      type: 'run';
      runId: number;
      jobs: EngineJob[];
      settings: SamplingSettings;
      /** Int32 flag: non-zero asks the run to stop at the next step. */
      abortFlag: SharedArrayBuffer;
    }
  | { type: 'dispose' };

/** What the model thread loaded (its `ready` message). */
export interface LoadedModels {
  backend: string;
  backendPackage: string;
  /** The model runtime chosen (CONTOUR_ENGINE), and the lines explaining the choice. */
  engine: EngineInfo;
  engineLog: string[];
  baseName: string;
  builtin: boolean;
  /** The base's only resolution (built-in model), or undefined when it samples any size. */
  nativeResolution: number | undefined;
  /** What the base draws (built-in model). */
  description: string | undefined;
  /** A request the base was made for (built-in model). */
  suggested: SuggestedRequest | undefined;
  servedTypes: ControlType[];
  headNames: Partial<Record<ControlType, string>>;
  /** The network preprocessors this worker has, and whether their weights are installed. */
  preprocessors: PreprocessorStatus[];
}

/** Model thread -> HTTP thread. */
export type FromThread =
  | ({ type: 'ready'; stats: EngineStats } & LoadedModels)
  | { type: 'init-failed'; error: SerializedError }
  | { type: 'step'; runId: number; step: number; total: number; stepMs: number }
  | { type: 'done'; runId: number; results: EngineJobResult[]; stats: EngineStats }
  | { type: 'failed'; runId: number; error: SerializedError; stats: EngineStats }
  | { type: 'preprocessed'; id: number; result: PreprocessorResult; preprocessors: PreprocessorStatus[] }
  | { type: 'preprocess-failed'; id: number; error: SerializedError }
  | { type: 'disposed' };
