/** Machine-readable reasons the CLIP tokenizer or text encoder refuses its input. */
export type ClipErrorCode =
  | 'clip_vocab_invalid'
  | 'clip_vocab_unreadable'
  | 'clip_unknown_token'
  | 'clip_bad_ids'
  | 'clip_bad_config'
  | 'clip_weights_missing'
  | 'clip_weights_shape'
  | 'clip_bad_cache_options';

/** Raised for malformed vocabularies, weights, configs or inputs of the CLIP text stack. */
export class ClipError extends Error {
  override readonly name = 'ClipError';
  constructor(
    readonly code: ClipErrorCode,
    message: string,
  ) {
    super(message);
  }
}
