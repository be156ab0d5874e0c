import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { CLIP_TOKEN_PATTERN, cleanPrompt } from './clean.ts';
import { ClipError } from './errors.ts';

/** The OpenAI CLIP vocabulary shipped with this package (MIT, see assets/clip/LICENSE). */
export const DEFAULT_CLIP_VOCAB_PATH = fileURLToPath(
  new URL('../../assets/clip/bpe_simple_vocab_16e6.txt.gz', import.meta.url),
);

export const START_OF_TEXT = '<|startoftext|>';
export const END_OF_TEXT = '<|endoftext|>';
/** Tokens per CLIP sequence as SD1.5 uses it, bos and eos included. */
export const CLIP_CONTEXT_LENGTH = 77;
/** Content tokens that fit between bos and eos. */
export const CLIP_CHUNK_TOKENS = CLIP_CONTEXT_LENGTH - 2;
/** Merges the original tokenizer reads: 49152 vocabulary entries less 256 bytes less 2 specials. */
const MERGE_COUNT = 49152 - 256 - 2;
/** BPE results kept per tokenizer; cleared when full so a long-running service does not grow without bound. */
const BPE_CACHE_LIMIT = 50_000;

/** A prompt framed for the text encoder. */
export interface ClipEncoding {
  /** bos, up to 75 content tokens, eos, then padding: always 77 ids. */
  ids: Int32Array;
  /** True when the prompt had more than 75 tokens and the rest was dropped. */
  truncated: boolean;
  /** Content tokens the prompt has before truncation (bos/eos/padding not counted). */
  tokenCount: number;
}

function isPrintableByte(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
}

/**
 * GPT-2 style reversible map from the 256 byte values to printable characters: printable Latin-1 bytes map to
 * themselves, the rest to U+0100 upwards, in byte order.
 */
function byteToUnicodeTable(): string[] {
  const table = new Array<string>(256);
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    table[byte] = String.fromCodePoint(isPrintableByte(byte) ? byte : 256 + next++);
  }
  return table;
}

const BYTE_TO_UNICODE = byteToUnicodeTable();
/** The first 256 vocabulary entries: the printable bytes' characters, then the remapped ones (ids 0-255). */
const BYTE_SYMBOLS_IN_VOCAB_ORDER = [
  ...BYTE_TO_UNICODE.filter((_, byte) => isPrintableByte(byte)),
  ...BYTE_TO_UNICODE.filter((_, byte) => !isPrintableByte(byte)),
];
const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((char, byte) => [char, byte]));
const utf8 = new TextEncoder();

/** CLIP's byte-level BPE tokenizer, as OpenAI's `SimpleTokenizer` and Hugging Face's `CLIPTokenizer`. */
export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  /** SD1.5 pads with the end-of-text id. */
  readonly padId: number;
  readonly vocabSize: number;
  private readonly encoder: ReadonlyMap<string, number>;
  private readonly decoder: readonly string[];
  private readonly ranks: ReadonlyMap<string, number>;
  private readonly bpeCache = new Map<string, string[]>();

  private constructor(encoder: Map<string, number>, merges: readonly [string, string][]) {
    this.encoder = encoder;
    const bos = encoder.get(START_OF_TEXT);
    const eos = encoder.get(END_OF_TEXT);
    if (bos === undefined || eos === undefined) {
      throw new ClipError('clip_vocab_invalid', `vocabulary lacks ${START_OF_TEXT} or ${END_OF_TEXT}`);
    }
    this.bosId = bos;
    this.eosId = eos;
    this.padId = eos;
    const decoder: string[] = [];
    for (const [token, id] of encoder) decoder[id] = token;
    this.decoder = decoder;
    this.vocabSize = decoder.length;
    this.ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
  }

  /** Loads OpenAI's `bpe_simple_vocab_16e6.txt.gz` (default: the copy shipped with this package). */
  static async fromOpenAIVocab(path: string = DEFAULT_CLIP_VOCAB_PATH): Promise<ClipTokenizer> {
    let text: string;
    try {
      text = gunzipSync(await readFile(path)).toString('utf8');
    } catch (error) {
      throw new ClipError('clip_vocab_unreadable', `cannot read CLIP vocabulary ${path}: ${String(error)}`);
    }
    return ClipTokenizer.fromOpenAIVocabText(text);
  }

  /** Builds the tokenizer from the decompressed text of `bpe_simple_vocab_16e6.txt`. */
  static fromOpenAIVocabText(text: string): ClipTokenizer {
    const merges = parseMerges(text);
    // The vocabulary is implied: bytes, bytes + '</w>', one entry per merge, then the two special tokens.
    const tokens = [
      ...BYTE_SYMBOLS_IN_VOCAB_ORDER,
      ...BYTE_SYMBOLS_IN_VOCAB_ORDER.map((char) => `${char}</w>`),
    ];
    for (const [a, b] of merges) tokens.push(a + b);
    tokens.push(START_OF_TEXT, END_OF_TEXT);
    return new ClipTokenizer(new Map(tokens.map((token, id) => [token, id])), merges);
  }

  /** Loads a Hugging Face tokenizer folder (`vocab.json` + `merges.txt`, as in SD1.5's `tokenizer/`). */
  static async fromHuggingFaceFolder(folder: string): Promise<ClipTokenizer> {
    let vocabJson: string;
    let mergesText: string;
    try {
      vocabJson = await readFile(join(folder, 'vocab.json'), 'utf8');
      mergesText = await readFile(join(folder, 'merges.txt'), 'utf8');
    } catch (error) {
      throw new ClipError(
        'clip_vocab_unreadable',
        `cannot read tokenizer folder ${folder}: ${String(error)}`,
      );
    }
    let vocab: unknown;
    try {
      vocab = JSON.parse(vocabJson);
    } catch {
      throw new ClipError('clip_vocab_invalid', `${folder}/vocab.json is not JSON`);
    }
    return ClipTokenizer.fromHuggingFaceFiles(vocab, mergesText);
  }

  /** Builds the tokenizer from the parsed `vocab.json` and the text of `merges.txt`. */
  static fromHuggingFaceFiles(vocab: unknown, mergesText: string): ClipTokenizer {
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) {
      throw new ClipError('clip_vocab_invalid', 'vocab.json must map tokens to ids');
    }
    const encoder = new Map<string, number>();
    for (const [token, id] of Object.entries(vocab)) {
      if (!Number.isInteger(id) || (id as number) < 0) {
        throw new ClipError(
          'clip_vocab_invalid',
          `vocab.json: id of ${JSON.stringify(token)} is not an index`,
        );
      }
      encoder.set(token, id as number);
    }
    const merges = parseMerges(mergesText);
    for (const [a, b] of merges) {
      if (!encoder.has(a + b)) {
        throw new ClipError('clip_vocab_invalid', `merges.txt: merge "${a} ${b}" has no vocabulary entry`);
      }
    }
    return new ClipTokenizer(encoder, merges);
  }

  /** The Hugging Face tokenizer files (`vocab.json` object, `merges.txt` text) of this vocabulary. */
  toHuggingFaceFiles(): { vocab: Record<string, number>; merges: string } {
    const merges = [...this.ranks.keys()];
    return { vocab: Object.fromEntries(this.encoder), merges: `#version: 0.2\n${merges.join('\n')}\n` };
  }

  /** BPE ids of a prompt after the original cleanup, without bos/eos framing or truncation. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    for (const match of cleanPrompt(text).matchAll(CLIP_TOKEN_PATTERN)) {
      const piece = match[0];
      // Special-token text in a prompt becomes the special id, as in the original.
      const symbols =
        piece === START_OF_TEXT || piece === END_OF_TEXT
          ? [piece]
          : this.bpe(Array.from(utf8.encode(piece), (byte) => BYTE_TO_UNICODE[byte]!).join(''));
      for (const symbol of symbols) {
        const id = this.encoder.get(symbol);
        if (id === undefined)
          throw new ClipError('clip_unknown_token', `no vocabulary id for BPE symbol ${symbol}`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** Frames up to 75 content ids as bos, ids, eos, padding (77 ids). */
  frame(contentIds: ArrayLike<number>): Int32Array {
    if (contentIds.length > CLIP_CHUNK_TOKENS) {
      throw new ClipError(
        'clip_bad_ids',
        `a chunk holds at most ${CLIP_CHUNK_TOKENS} ids, got ${contentIds.length}`,
      );
    }
    const ids = new Int32Array(CLIP_CONTEXT_LENGTH).fill(this.padId);
    ids[0] = this.bosId;
    ids.set(contentIds, 1);
    ids[contentIds.length + 1] = this.eosId;
    return ids;
  }

  /** Tokenizes and frames a prompt as SD1.5 does: 77 ids, content truncated to 75 tokens. */
  encode(text: string): ClipEncoding {
    const tokens = this.tokenize(text);
    return {
      ids: this.frame(tokens.slice(0, CLIP_CHUNK_TOKENS)),
      truncated: tokens.length > CLIP_CHUNK_TOKENS,
      tokenCount: tokens.length,
    };
  }

  /** Text of ids (specials kept, '</w>' as a space), as the original `decode`. */
  decode(ids: ArrayLike<number>): string {
    let symbols = '';
    for (let i = 0; i < ids.length; i++) {
      const token = this.decoder[ids[i]!];
      if (token === undefined) throw new ClipError('clip_bad_ids', `id ${ids[i]} is not in the vocabulary`);
      symbols += token;
    }
    const bytes: number[] = [];
    const parts: string[] = [];
    // Special tokens are not byte symbols: decode the bytes gathered so far and keep them verbatim.
    for (const part of symbols.split(/(<\|startoftext\|>|<\|endoftext\|>)/)) {
      if (part === START_OF_TEXT || part === END_OF_TEXT) {
        parts.push(Buffer.from(bytes.splice(0)).toString('utf8'), part);
        continue;
      }
      for (const char of part.replaceAll('</w>', ' ')) {
        bytes.push(char === ' ' ? 0x20 : (UNICODE_TO_BYTE.get(char) ?? 0x3f));
      }
    }
    parts.push(Buffer.from(bytes).toString('utf8'));
    return parts.join('');
  }

  /** Byte-pair merges of one pre-token (already mapped to byte characters), lowest rank first. */
  private bpe(token: string): string[] {
    const cached = this.bpeCache.get(token);
    if (cached) return cached;
    const chars = Array.from(token);
    let word = chars.slice(0, -1);
    word.push(`${chars.at(-1)!}</w>`);
    while (word.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best]!;
      const second = word[best + 1]!;
      // Merge every occurrence of the pair, left to right.
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (word[i] === first && word[i + 1] === second && i < word.length - 1) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]!);
        }
      }
      word = merged;
    }
    if (this.bpeCache.size >= BPE_CACHE_LIMIT) this.bpeCache.clear();
    this.bpeCache.set(token, word);
    return word;
  }
}

/** Merge pairs from a merges file: the header line skipped, the first 48894 merges kept (as the original). */
function parseMerges(text: string): [string, string][] {
  const lines = text.split('\n').slice(1, MERGE_COUNT + 1);
  if (lines.length < MERGE_COUNT) {
    throw new ClipError('clip_vocab_invalid', `expected ${MERGE_COUNT} merges, found ${lines.length}`);
  }
  return lines.map((line, index) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new ClipError(
        'clip_vocab_invalid',
        `merge line ${index + 2} is not two symbols: ${JSON.stringify(line)}`,
      );
    }
    return [parts[0]!, parts[1]!];
  });
}
