/**
 * `@contour/sdk`: the typed client for the Contour API. The request and resource types are the
 * shared zod contracts' inferred types, so the SDK can never drift from what the edge validates.
 */
export type {
  ApiErrorBody,
  ControlType,
  ControlUnitInput,
  ErrorCode,
  ErrorEnvelope,
  Generation,
  GenerationEvent,
  GenerationRequestInput,
  GenerationStatus,
  ModelList,
  PreprocessResult,
} from '@contour/shared/contracts';
