/**
 * `@contour/sdk`: the typed client for the Contour API. The request and resource types are the
 * shared zod contracts' inferred types, so the SDK can never drift from what the edge validates.
 */
export type {
  ApiErrorBody,
  Balance,
  ClientToken,
  ControlType,
  ControlUnitInput,
  ErrorCode,
  ErrorDetail,
  ErrorEnvelope,
  Generation,
  GenerationEvent,
  GenerationEventType,
  GenerationRequestInput,
  GenerationStatus,
  ModelList,
  PoseKeypoints,
  PreprocessorName,
  PreprocessorStage,
  PreprocessResult,
  Scheduler,
  WebhookPayload,
} from '@contour/shared/contracts';
export type { ClientTokenCreateParams } from './billing/billing.ts';
export { type ClientTokenSource, Contour, type ContourOptions, DEFAULT_BASE_URL } from './client.ts';
export {
  ApiError,
  AuthenticationError,
  ConflictError,
  ConnectionError,
  ContourError,
  GenerationFailedError,
  InsufficientCreditsError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  ServerError,
  TimeoutError,
  ValidationError,
} from './errors/errors.ts';
export {
  type CreateOptions,
  type GenerationCreateParams,
  type GenerationList,
  type GenerationListParams,
  type GenerationPage,
  type GenerationProgress,
  MAX_STREAM_RECONNECTS,
  POLL_INTERVAL_MS,
  type RunOptions,
  type StreamOptions,
  StreamUnavailableError,
  TERMINAL_GENERATION_STATUSES,
} from './generations/generations.ts';
export {
  DEFAULT_MAX_RETRIES,
  DEFAULT_TIMEOUT_MS,
  INITIAL_RETRY_DELAY_MS,
  MAX_RETRY_AFTER_MS,
  MAX_RETRY_DELAY_MS,
  RETRY_JITTER_RATIO,
  RETRYABLE_STATUSES,
} from './http/retry.ts';
export type { RequestOptions } from './http/transport.ts';
export {
  CONTROL_TYPE_PREPROCESSORS,
  DEFAULT_DETECT_RESOLUTION,
  defaultPreprocessor,
  isNetworkPreprocessor,
  isPreprocessorName,
  MAX_DETECT_RESOLUTION,
  MIN_DETECT_RESOLUTION,
  PREPROCESSOR_NAMES,
  PREPROCESSORS,
  type PreprocessorFacts,
  type PreprocessorParamSpec,
  preprocessorsFor,
} from './preprocess/catalogue.ts';
export type { PreprocessParams } from './preprocess/preprocess.ts';
export {
  type ClientTokenHandlerOptions,
  type ClientTokenResponse,
  clientTokenHandler,
  createClientTokenHandler,
  DEFAULT_CLIENT_TOKEN_TTL_S,
  fetchClientToken,
} from './server/client-tokens.ts';
export type { ImageInput } from './uploads/uploads.ts';
export { type VerifyOptions, WEBHOOK_TOLERANCE_S, WebhookVerificationError } from './webhooks/webhooks.ts';
