import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEmphasis, tokenizePrompt } from './prompt.ts';
import { ClipTokenizer } from './tokenizer.ts';

/** Unframed ids from OpenAI's SimpleTokenizer (see test/fixtures/clip/README.md). */
const reference = JSON.parse(
  readFileSync(new URL('../../test/fixtures/clip/tokenizer_reference.json', import.meta.url), 'utf8'),
) as { text: string; tokens: number[] }[];
const longPrompt = reference.find((entry) => entry.tokens.length > 75)!;

let tokenizer: ClipTokenizer;
beforeAll(async () => {
  tokenizer = await ClipTokenizer.fromOpenAIVocab();
});

describe('parseEmphasis', () => {
  it('reads Automatic1111 emphasis syntax', () => {
    expect(parseEmphasis('a (cat) on a [mat]')).toEqual([
      { text: 'a ', weight: 1 },
      { text: 'cat', weight: 1.1 },
      { text: ' on a ', weight: 1 },
      { text: 'mat', weight: 1 / 1.1 },
    ]);
    expect(parseEmphasis('((red)) (blue:1.5) [[x]]').map((p) => [p.text, +p.weight.toFixed(6)])).toEqual([
      ['red', 1.21],
      [' ', 1],
      ['blue', 1.5],
      [' ', 1],
      ['x', +(1 / 1.21).toFixed(6)],
    ]);
  });

  it('treats escapes, stray closers and colons as text and closes open brackets at the end', () => {
    expect(parseEmphasis('\\(literal\\) a) b] c:d')).toEqual([{ text: '(literal) a) b] c:d', weight: 1 }]);
    expect(parseEmphasis('x (open')).toEqual([
      { text: 'x ', weight: 1 },
      { text: 'open', weight: 1.1 },
    ]);
    expect(parseEmphasis('(a (b:2) c:0.5)').map((p) => [p.text, p.weight])).toEqual([
      ['a ', 0.5],
      ['b', 1],
      [' c', 0.5],
    ]);
    expect(parseEmphasis('')).toEqual([{ text: '', weight: 1 }]);
  });
});

describe('tokenizePrompt', () => {
  it('equals the plain SD1.5 framing by default', () => {
    for (const { text } of reference) {
      const prompt = tokenizePrompt(tokenizer, text);
      const plain = tokenizer.encode(text);
      expect(prompt.chunks).toHaveLength(1);
      expect(prompt.chunks[0]!.ids).toEqual(plain.ids);
      expect([prompt.truncated, prompt.tokenCount, prompt.weighted]).toEqual([
        plain.truncated,
        plain.tokenCount,
        false,
      ]);
    }
  });

  it('splits long prompts into framed 75-token chunks', () => {
    const prompt = tokenizePrompt(tokenizer, longPrompt.text, { longPrompt: 'chunks' });
    expect(longPrompt.tokens.length).toBe(98);
    expect(prompt.truncated).toBe(false);
    expect(prompt.chunks.map((chunk) => Array.from(chunk.ids))).toEqual([
      [49406, ...longPrompt.tokens.slice(0, 75), 49407],
      [49406, ...longPrompt.tokens.slice(75), ...new Array(77 - 1 - 23).fill(49407)],
    ]);
    const capped = tokenizePrompt(tokenizer, longPrompt.text, { longPrompt: 'chunks', maxChunks: 1 });
    expect(capped.chunks).toHaveLength(1);
    expect(capped.truncated).toBe(true);
    expect(tokenizePrompt(tokenizer, '', { longPrompt: 'chunks' }).chunks).toHaveLength(1);
    expect(() => tokenizePrompt(tokenizer, 'x', { longPrompt: 'chunks', maxChunks: 0 })).toThrow(
      expect.objectContaining({ code: 'clip_bad_config' }),
    );
  });

  it('gives emphasized tokens their weight and leaves syntax-free prompts unweighted', () => {
    const prompt = tokenizePrompt(tokenizer, 'a photo of a (cat:1.5)', { emphasis: true });
    expect(Array.from(prompt.chunks[0]!.ids.slice(0, 7))).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
    expect(Array.from(prompt.chunks[0]!.weights.slice(0, 7))).toEqual([1, 1, 1, 1, 1, 1.5, 1]);
    expect(prompt.weighted).toBe(true);
    expect(tokenizePrompt(tokenizer, 'a photo of a cat', { emphasis: true }).weighted).toBe(false);
  });
});
