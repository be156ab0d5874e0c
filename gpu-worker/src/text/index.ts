/**
 * CLIP text conditioning for Stable Diffusion 1.5: the BPE tokenizer, the text transformer, prompt options
 * (long-prompt chunks, emphasis) and an LRU cache of prompt embeddings.
 */
export { type PromptCacheKey, type PromptCacheStats, PromptEmbeddingCache } from './cache.ts';
export { cleanPrompt, fixText } from './clean.ts';
export { encodeTokenizedPrompt } from './encode-prompt.ts';
export { ClipError, type ClipErrorCode } from './errors.ts';
export {
  CLIP_LAYOUT_PREFIXES,
  type ClipTextConfig,
  ClipTextModel,
  type ClipTextWeights,
  type ClipWeightsLayout,
  detectClipLayout,
  type LoadClipTextModelOptions,
  loadClipTextModel,
  SD15_CLIP_TEXT_CONFIG,
} from './model.ts';
export {
  type PromptChunk,
  type PromptOptions,
  parseEmphasis,
  type TokenizedPrompt,
  tokenizePrompt,
  type WeightedText,
} from './prompt.ts';
export {
  CLIP_CHUNK_TOKENS,
  CLIP_CONTEXT_LENGTH,
  type ClipEncoding,
  ClipTokenizer,
  DEFAULT_CLIP_VOCAB_PATH,
  END_OF_TEXT,
  START_OF_TEXT,
} from './tokenizer.ts';
