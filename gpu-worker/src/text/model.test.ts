import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, testEngine } from '../../test/parity-helpers.ts';
import { initBackend } from '../backend.ts';
import type { ModelEngine } from '../engine/model-engine.ts';
import { encodeSafetensors, SafetensorsFile } from '../weights/safetensors.ts';
import { ClipError } from './errors.ts';
import { CLIP_LAYOUT_PREFIXES, type ClipTextModel, loadClipTextModel } from './model.ts';
import { ClipTokenizer } from './tokenizer.ts';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/clip/', import.meta.url));
const WEIGHTS_PATH = join(FIXTURES, 'clipA.weights.safetensors');

let io: SafetensorsFile;
let inputIds: Int32Array;
let expected: Float32Array;
let hfModel: ClipTextModel;

/** Largest absolute difference relative to the largest reference magnitude. */
function relativeError(actual: Float32Array, reference: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return worst / scale;
}

beforeAll(async () => {
  await initBackend({ log: () => {} });
  io = await SafetensorsFile.open(join(FIXTURES, 'clipA.io.safetensors'));
  inputIds = await io.readInt32('in.input_ids');
  expected = await io.readFloat32('out.last_hidden_state');
  hfModel = await loadClipTextModel(WEIGHTS_PATH);
});

afterAll(async () => {
  hfModel.dispose();
  await io.close();
});

describe('ClipTextModel against OpenAI CLIP (clipA fixture)', () => {
  it('reads its config from the checkpoint metadata', () => {
    expect(hfModel.config).toEqual({
      vocab_size: 49408,
      hidden_size: 32,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      max_position_embeddings: 77,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
    });
  });

  it('feeds it ids the tokenizer produces for the fixture prompts', async () => {
    const tokenizer = await ClipTokenizer.fromOpenAIVocab();
    const prompts = JSON.parse(io.metadata['prompts']!) as string[];
    const ours = prompts.flatMap((prompt) => Array.from(tokenizer.encode(prompt).ids));
    expect(ours).toEqual(Array.from(inputIds));
  });

  it('reproduces last_hidden_state from the Hugging Face layout', async () => {
    const before = tf.memory().numTensors;
    const output = hfModel.encode(inputIds);
    expect(output.shape).toEqual([3, 77, 32]);
    const error = relativeError(await output.data<'float32'>(), expected);
    output.dispose();
    expect(error).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reproduces last_hidden_state from the original SD checkpoint layout', async () => {
    const hf = await SafetensorsFile.open(WEIGHTS_PATH);
    const renamed: Parameters<typeof encodeSafetensors>[0] = {};
    for (const [name, info] of hf.tensors) {
      const newName = CLIP_LAYOUT_PREFIXES.original + name.slice(CLIP_LAYOUT_PREFIXES.huggingface.length);
      renamed[newName] = { dtype: 'F32', shape: info.shape, data: await hf.readFloat32(name) };
    }
    // A UNet key beside it, as in a full checkpoint, must not confuse layout detection.
    renamed['model.diffusion_model.out.2.bias'] = { dtype: 'F32', shape: [4], data: new Float32Array(4) };
    const bytes = encodeSafetensors(renamed, hf.metadata);
    await hf.close();
    const model = await loadClipTextModel(SafetensorsFile.fromBytes(bytes), { layout: 'auto' });
    const rows = [0, 1, 2].map((row) => inputIds.subarray(row * 77, (row + 1) * 77));
    const output = model.encode(rows);
    const error = relativeError(await output.data<'float32'>(), expected);
    tf.dispose(output);
    model.dispose();
    expect(error).toBeLessThan(1e-4);
  });

  it('gives each prompt the same embedding alone as in a batch', async () => {
    const alone = hfModel.encode(inputIds.subarray(77, 154));
    const error = relativeError(await alone.data<'float32'>(), expected.subarray(77 * 32, 154 * 32));
    alone.dispose();
    expect(error).toBeLessThan(1e-4);
  });
});

describe.each(ENGINES)('ClipTextModel on the %s engine (clipA fixture)', (engineName) => {
  let engine: ModelEngine;
  beforeAll(async () => {
    engine = await testEngine(engineName);
  });
  afterAll(async () => {
    await engine.dispose();
  });

  it('reproduces last_hidden_state, each prompt alone as in the batch', async () => {
    const ids = tf.tensor2d(inputIds, [3, 77], 'int32');
    const one = tf.tensor2d(inputIds.subarray(77, 154), [1, 77], 'int32');
    const output = await engine.encodeText(hfModel, ids);
    const alone = await engine.encodeText(hfModel, one);
    expect(output.shape).toEqual([3, 77, 32]);
    expect(relativeError(await output.data<'float32'>(), expected)).toBeLessThan(1e-4);
    expect(relativeError(await alone.data<'float32'>(), expected.subarray(77 * 32, 154 * 32))).toBeLessThan(
      1e-4,
    );
    tf.dispose([ids, one, output, alone]);
  });

  it('rejects out-of-range ids before running', async () => {
    const ids = tf.tensor2d(new Int32Array([0, 49408]), [1, 2], 'int32');
    await expect(engine.encodeText(hfModel, ids)).rejects.toThrow(/out of range/);
    ids.dispose();
  });
});

describe('ClipTextModel errors', () => {
  it('rejects out-of-range ids, ragged rows and over-long sequences', () => {
    const before = tf.memory().numTensors;
    expect(() => hfModel.encode(new Int32Array(77).fill(49408))).toThrow(
      expect.objectContaining({ code: 'clip_bad_ids' }),
    );
    expect(() => hfModel.encode([new Int32Array(77), new Int32Array(76)])).toThrow(ClipError);
    expect(() => hfModel.encode(new Int32Array(78), 78)).toThrow(/at most 77/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports missing tensors, wrong layouts and inconsistent configs', async () => {
    const empty = SafetensorsFile.fromBytes(encodeSafetensors({}));
    await expect(loadClipTextModel(empty)).rejects.toMatchObject({ code: 'clip_weights_missing' });
    await expect(loadClipTextModel(WEIGHTS_PATH, { layout: 'original' })).rejects.toMatchObject({
      code: 'clip_weights_missing',
    });
    const before = tf.memory().numTensors;
    await expect(
      loadClipTextModel(WEIGHTS_PATH, { config: { num_attention_heads: 5 } }),
    ).rejects.toMatchObject({
      code: 'clip_bad_config',
    });
    await expect(
      loadClipTextModel(WEIGHTS_PATH, { config: { intermediate_size: 64 } }),
    ).rejects.toMatchObject({
      code: 'clip_weights_shape',
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
