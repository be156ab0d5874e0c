/** Machine-readable reasons the model registry refuses something. */
export type RegistryErrorCode =
  | 'model_config_invalid'
  | 'model_not_available'
  | 'model_load_failed'
  | 'memory_budget_exceeded';

/** Raised by the model registry; `head` names the control type at fault when there is one. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly head?: string,
  ) {
    super(message);
  }
}
