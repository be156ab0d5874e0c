import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import { encodeTokenizedPrompt } from './encode-prompt.ts';
import { type ClipTextModel, loadClipTextModel } from './model.ts';
import { tokenizePrompt } from './prompt.ts';
import { ClipTokenizer } from './tokenizer.ts';

const fixture = (name: string) => new URL(`../../test/fixtures/clip/${name}`, import.meta.url).pathname;
const longText = (
  JSON.parse(readFileSync(fixture('tokenizer_reference.json'), 'utf8')) as {
    text: string;
    tokens: number[];
  }[]
).find((entry) => entry.tokens.length > 75)!.text;

let model: ClipTextModel;
let tokenizer: ClipTokenizer;
let prompts: string[];
let expected: Float32Array;

beforeAll(async () => {
  await initBackend({ log: () => {} });
  tokenizer = await ClipTokenizer.fromOpenAIVocab();
  model = await loadClipTextModel(fixture('clipA.weights.safetensors'));
  const io = await SafetensorsFile.open(fixture('clipA.io.safetensors'));
  prompts = JSON.parse(io.metadata['prompts']!) as string[];
  expected = await io.readFloat32('out.last_hidden_state');
  await io.close();
});

afterAll(() => model.dispose());

async function values(tensor: tf.Tensor): Promise<Float32Array> {
  const data = (await tensor.data()) as Float32Array;
  tensor.dispose();
  return data;
}

describe('encodeTokenizedPrompt', () => {
  it('with default options reproduces the OpenAI reference for each prompt', async () => {
    const before = tf.memory().numTensors;
    for (const [row, prompt] of prompts.entries()) {
      const output = encodeTokenizedPrompt(model, tokenizePrompt(tokenizer, prompt));
      expect(output.shape).toEqual([1, 77, 32]);
      const actual = await values(output);
      const reference = expected.subarray(row * 77 * 32, (row + 1) * 77 * 32);
      const worst = Math.max(...actual.map((value, i) => Math.abs(value - reference[i]!)));
      expect(worst).toBeLessThan(1e-4);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('concatenates separately framed chunks along the token axis', async () => {
    const prompt = tokenizePrompt(tokenizer, longText, { longPrompt: 'chunks' });
    const output = encodeTokenizedPrompt(model, prompt);
    expect(output.shape).toEqual([1, 154, 32]);
    const actual = await values(output);
    for (const [index, chunk] of prompt.chunks.entries()) {
      const alone = await values(model.encode(chunk.ids));
      expect(actual.subarray(index * 77 * 32, (index + 1) * 77 * 32)).toEqual(alone);
    }
    const truncated = await values(encodeTokenizedPrompt(model, tokenizePrompt(tokenizer, longText)));
    expect(truncated).toEqual(actual.subarray(0, 77 * 32));
  });

  it('applies emphasis as weights with the chunk mean restored', async () => {
    const plain = await values(model.encode(tokenizer.encode('a photo of a cat').ids));
    const prompt = tokenizePrompt(tokenizer, 'a photo of a (cat:1.5)', { emphasis: true });
    const actual = await values(encodeTokenizedPrompt(model, prompt));
    const weights = prompt.chunks[0]!.weights;
    const weighted = plain.map((value, i) => value * weights[Math.floor(i / 32)]!);
    const mean = (data: Float32Array) => data.reduce((sum, value) => sum + value, 0) / data.length;
    const rescale = mean(plain) / mean(weighted);
    for (let i = 0; i < plain.length; i++) expect(actual[i]).toBeCloseTo(weighted[i]! * rescale, 5);
    expect(mean(actual)).toBeCloseTo(mean(plain), 5);
    // Position 5 (the cat token) was boosted relative to its neighbours.
    expect(actual[5 * 32]! / actual[4 * 32]!).toBeCloseTo((1.5 * plain[5 * 32]!) / plain[4 * 32]!, 4);
  });
});
