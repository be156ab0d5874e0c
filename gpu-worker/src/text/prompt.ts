import { ClipError } from './errors.ts';
import { CLIP_CHUNK_TOKENS, CLIP_CONTEXT_LENGTH, type ClipTokenizer } from './tokenizer.ts';

/** A piece of prompt text and the emphasis weight its tokens get. */
export interface WeightedText {
  text: string;
  weight: number;
}

/** How to treat prompts longer than 75 tokens and emphasis syntax. Defaults reproduce the original SD1.5. */
export interface PromptOptions {
  /** 'truncate' (default): keep the first 75 tokens. 'chunks': encode 75-token chunks and concatenate them. */
  longPrompt?: 'truncate' | 'chunks';
  /** Most chunks in 'chunks' mode (default 4, i.e. 300 tokens); the rest is truncated. */
  maxChunks?: number;
  /** Read `(word)`, `[word]`, `(word:1.3)` emphasis as Automatic1111's web UI does (default false). */
  emphasis?: boolean;
}

/** One 77-token window and the emphasis weight of each position (1 for bos, eos and padding). */
export interface PromptChunk {
  ids: Int32Array;
  weights: Float32Array;
}

/** A prompt ready for the text encoder. */
export interface TokenizedPrompt {
  chunks: PromptChunk[];
  /** Content tokens of the whole prompt before any truncation. */
  tokenCount: number;
  /** True when tokens were dropped (over 75 tokens, or over maxChunks * 75 in 'chunks' mode). */
  truncated: boolean;
  /** True when some weight differs from 1, so the encoder must apply emphasis. */
  weighted: boolean;
}

const ROUND_UP = 1.1;
const SQUARE_DOWN = 1 / 1.1;
/** Escapes, brackets, an explicit weight closing a round bracket, or a run of plain text. */
const EMPHASIS_TOKEN = /\\[()[\]\\]|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/g;

/**
 * Splits a prompt into weighted pieces with Automatic1111's emphasis rules: `(x)` multiplies by 1.1, `[x]`
 * divides by 1.1, `(x:w)` multiplies by w, nesting multiplies, `\(` is a literal bracket, an unclosed bracket
 * runs to the end, an unmatched closing bracket is literal text. The `BREAK` keyword is not supported.
 */
export function parseEmphasis(prompt: string): WeightedText[] {
  const pieces: WeightedText[] = [];
  const openRound: number[] = [];
  const openSquare: number[] = [];
  const scaleFrom = (start: number, factor: number) => {
    for (let i = start; i < pieces.length; i++) pieces[i]!.weight *= factor;
  };
  for (const match of prompt.matchAll(EMPHASIS_TOKEN)) {
    const token = match[0];
    const explicitWeight = match[1];
    if (token.length === 2 && token.startsWith('\\') && token !== '\\\\')
      pieces.push({ text: token[1]!, weight: 1 });
    else if (token === '\\\\') pieces.push({ text: '\\', weight: 1 });
    else if (token === '(') openRound.push(pieces.length);
    else if (token === '[') openSquare.push(pieces.length);
    else if (
      explicitWeight !== undefined &&
      openRound.length > 0 &&
      Number.isFinite(Number(explicitWeight))
    ) {
      scaleFrom(openRound.pop()!, Number(explicitWeight));
    } else if (token === ')' && openRound.length > 0) scaleFrom(openRound.pop()!, ROUND_UP);
    else if (token === ']' && openSquare.length > 0) scaleFrom(openSquare.pop()!, SQUARE_DOWN);
    else pieces.push({ text: token, weight: 1 });
  }
  for (const start of openRound) scaleFrom(start, ROUND_UP);
  for (const start of openSquare) scaleFrom(start, SQUARE_DOWN);
  const merged: WeightedText[] = [];
  for (const piece of pieces) {
    const last = merged.at(-1);
    if (last && last.weight === piece.weight) last.text += piece.text;
    else merged.push({ ...piece });
  }
  return merged.length > 0 ? merged : [{ text: '', weight: 1 }];
}

/**
 * Tokenizes a prompt for the text encoder. With default options this is exactly `tokenizer.encode` (one chunk,
 * weights 1). With emphasis each weighted piece is tokenized on its own, as Automatic1111 does.
 */
export function tokenizePrompt(
  tokenizer: ClipTokenizer,
  prompt: string,
  options: PromptOptions = {},
): TokenizedPrompt {
  const maxChunks = options.longPrompt === 'chunks' ? (options.maxChunks ?? 4) : 1;
  if (!Number.isInteger(maxChunks) || maxChunks < 1) {
    throw new ClipError('clip_bad_config', `maxChunks must be a positive integer, got ${options.maxChunks}`);
  }
  const ids: number[] = [];
  const weights: number[] = [];
  for (const { text, weight } of options.emphasis ? parseEmphasis(prompt) : [{ text: prompt, weight: 1 }]) {
    for (const id of tokenizer.tokenize(text)) {
      ids.push(id);
      weights.push(weight);
    }
  }
  const kept = Math.min(ids.length, maxChunks * CLIP_CHUNK_TOKENS);
  const chunkCount = Math.max(1, Math.ceil(kept / CLIP_CHUNK_TOKENS));
  const chunks: PromptChunk[] = [];
  for (let c = 0; c < chunkCount; c++) {
    const start = c * CLIP_CHUNK_TOKENS;
    const end = Math.min(kept, start + CLIP_CHUNK_TOKENS);
    const chunkWeights = new Float32Array(CLIP_CONTEXT_LENGTH).fill(1);
    chunkWeights.set(weights.slice(start, end), 1);
    chunks.push({ ids: tokenizer.frame(ids.slice(start, end)), weights: chunkWeights });
  }
  return {
    chunks,
    tokenCount: ids.length,
    truncated: ids.length > kept,
    weighted: weights.some((weight) => weight !== 1),
  };
}
