import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanPrompt } from './clean.ts';
import { ClipError } from './errors.ts';
import { CLIP_CHUNK_TOKENS, ClipTokenizer } from './tokenizer.ts';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/clip/', import.meta.url));
/** Framed ids from OpenAI's SimpleTokenizer (the project's shared fixture). */
const framedReference = JSON.parse(readFileSync(join(FIXTURES, 'clip_tokens.json'), 'utf8')) as {
  text: string;
  ids: number[];
}[];
/** Unframed BPE ids from OpenAI's SimpleTokenizer with ftfy 6.3.1 (see the fixtures README). */
const bpeReference = JSON.parse(readFileSync(join(FIXTURES, 'tokenizer_reference.json'), 'utf8')) as {
  text: string;
  tokens: number[];
}[];

function referenceTokens(text: string): number[] {
  const entry = bpeReference.find((item) => item.text === text);
  if (!entry) throw new Error(`no reference for ${JSON.stringify(text)}`);
  return entry.tokens;
}

let openai: ClipTokenizer;
let huggingFace: ClipTokenizer;

beforeAll(async () => {
  openai = await ClipTokenizer.fromOpenAIVocab();
  huggingFace = await ClipTokenizer.fromHuggingFaceFolder(join(FIXTURES, 'hf-tokenizer'));
});

describe('ClipTokenizer against the OpenAI reference', () => {
  it('frames every shared fixture prompt exactly as SD1.5 does', () => {
    expect(framedReference.length).toBeGreaterThan(0);
    for (const { text, ids } of framedReference) {
      const encoding = openai.encode(text);
      expect(Array.from(encoding.ids), text).toEqual(ids);
      expect(encoding.truncated).toBe(false);
      expect(encoding.tokenCount).toBe(ids.indexOf(49407) - 1);
    }
  });

  it.each(bpeReference.map((entry) => [JSON.stringify(entry.text).slice(0, 60), entry] as const))(
    'tokenizes %s like the original',
    (_, { text, tokens }) => {
      expect(openai.tokenize(text)).toEqual(tokens);
    },
  );

  it('loads the same tokenizer from a Hugging Face folder', () => {
    expect(huggingFace.vocabSize).toBe(49408);
    expect([huggingFace.bosId, huggingFace.eosId, huggingFace.padId]).toEqual([49406, 49407, 49407]);
    for (const { text, tokens } of bpeReference) expect(huggingFace.tokenize(text)).toEqual(tokens);
    for (const { text, ids } of framedReference)
      expect(Array.from(huggingFace.encode(text).ids)).toEqual(ids);
  });
});

describe('ClipTokenizer.toHuggingFaceFiles', () => {
  it('writes the Hugging Face tokenizer folder made from OpenAI SimpleTokenizer, entry for entry', () => {
    const files = openai.toHuggingFaceFiles();
    expect(files.vocab).toEqual(
      JSON.parse(readFileSync(join(FIXTURES, 'hf-tokenizer', 'vocab.json'), 'utf8')),
    );
    expect(files.merges.trimEnd().split('\n')).toEqual(
      readFileSync(join(FIXTURES, 'hf-tokenizer', 'merges.txt'), 'utf8')
        .trimEnd()
        .split('\n'),
    );
  });
});

describe('ClipTokenizer framing', () => {
  it('truncates over-long prompts to 75 content tokens and reports it', () => {
    const long = bpeReference.find((entry) => entry.tokens.length > CLIP_CHUNK_TOKENS)!;
    const encoding = openai.encode(long.text);
    expect(encoding.truncated).toBe(true);
    expect(encoding.tokenCount).toBe(long.tokens.length);
    expect(encoding.ids).toHaveLength(77);
    expect(Array.from(encoding.ids)).toEqual([49406, ...long.tokens.slice(0, 75), 49407]);
  });

  it('keeps a prompt of exactly 75 tokens whole', () => {
    const words = Array.from({ length: 75 }, () => 'cat').join(' ');
    const encoding = openai.encode(words);
    expect(encoding.truncated).toBe(false);
    expect(encoding.tokenCount).toBe(75);
    expect(encoding.ids[75]).toBe(2368);
    expect(encoding.ids[76]).toBe(49407);
    expect(openai.encode(`${words} cat`).truncated).toBe(true);
  });

  it('counts UTF-8 bytes, not UTF-16 code units', () => {
    // Each of these is one code point but two UTF-16 units; its BPE symbols must come from 4 UTF-8 bytes.
    const tokens = openai.tokenize('𝄞');
    expect(openai.decode(tokens)).toBe('𝄞 ');
    expect(tokens.length).toBeGreaterThanOrEqual(1);
    expect(tokens.length).toBeLessThanOrEqual(4);
  });

  it('decodes back to the cleaned text', () => {
    const withoutSpaces = (text: string) => text.replace(/ /g, '');
    for (const { text } of bpeReference.filter((entry) => !entry.text.includes('<|'))) {
      expect(withoutSpaces(openai.decode(openai.tokenize(text)))).toBe(withoutSpaces(cleanPrompt(text)));
    }
    expect(openai.decode(openai.tokenize('A photo of a cat!'))).toBe('a photo of a cat ! ');
    expect(openai.decode([49406, 320, 49407])).toBe('<|startoftext|>a <|endoftext|>');
  });
});

describe('ClipTokenizer cleanup where ftfy matters', () => {
  it('straightens curly quotes so contractions split as in plain ASCII', () => {
    expect(openai.tokenize('don\u2019t')).toEqual(openai.tokenize("don't"));
    expect(openai.tokenize("don't")).toEqual(
      referenceTokens("don't can't won't it's we're they've I'm you'll he'd").slice(0, 2),
    );
  });

  it('expands ligatures and fullwidth forms, and NFC-composes combining marks', () => {
    expect(openai.tokenize('\ufb01sh')).toEqual(openai.tokenize('fish'));
    expect(openai.tokenize('\uff21\uff22\uff23')).toEqual(openai.tokenize('abc'));
    expect(openai.tokenize('cafe\u0301')).toEqual(openai.tokenize('caf\u00e9'));
  });

  it('unescapes nested and upper-case HTML entities', () => {
    expect(cleanPrompt('&amp;amp;amp;amp;')).toBe('&');
    expect(cleanPrompt('&EACUTE;')).toBe('é');
    expect(cleanPrompt('<b>&amp;amp;amp;</b>')).toBe('<b>&amp;</b>');
  });

  it('maps lone surrogates to U+FFFD and drops control characters', () => {
    expect(cleanPrompt('a\ud800b')).toBe('a\ufffdb');
    expect(cleanPrompt('\x1b[31mred\x1b[0m \u0000x')).toBe('red x');
  });
});

describe('ClipTokenizer errors', () => {
  it('rejects a broken vocabulary with a typed error', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'clip-vocab-'));
    try {
      await writeFile(join(folder, 'vocab.json'), '[1,2]');
      await writeFile(join(folder, 'merges.txt'), '#version: 0.2\na b\n');
      await expect(ClipTokenizer.fromHuggingFaceFolder(folder)).rejects.toMatchObject({
        code: 'clip_vocab_invalid',
      });
      await expect(ClipTokenizer.fromOpenAIVocab(join(folder, 'missing.gz'))).rejects.toBeInstanceOf(
        ClipError,
      );
      expect(() => ClipTokenizer.fromOpenAIVocabText('header\na b\n')).toThrow(/merges/);
    } finally {
      await rm(folder, { recursive: true });
    }
  });

  it('refuses to frame more than 75 ids and to decode unknown ids', () => {
    expect(() => openai.frame(new Array(76).fill(320))).toThrow(ClipError);
    expect(() => openai.decode([60000])).toThrow(expect.objectContaining({ code: 'clip_bad_ids' }));
  });
});
