/**
 * Prints CLIP text-stack speeds: tokenizer throughput, and SD1.5-size text encoder latency (random weights, the
 * real 12 x 768 shape) on the backend `initBackend` picks. Run: npx tsx gpu-worker/bench/text-encoder.bench.ts [batch]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { PromptEmbeddingCache } from '../src/text/cache.ts';
import { encodeTokenizedPrompt } from '../src/text/encode-prompt.ts';
import { loadClipTextModel, SD15_CLIP_TEXT_CONFIG } from '../src/text/model.ts';
import { tokenizePrompt } from '../src/text/prompt.ts';
import { ClipTokenizer } from '../src/text/tokenizer.ts';
import { encodeSafetensors, SafetensorsFile } from '../src/weights/safetensors.ts';

const backend = await initBackend({ log: () => {} });
const batch = Number(process.argv[2] ?? 2);

const loadStart = performance.now();
const tokenizer = await ClipTokenizer.fromOpenAIVocab();
console.log(`tokenizer load: ${(performance.now() - loadStart).toFixed(0)} ms`);

const prompts = Array.from(
  { length: 2000 },
  (_, i) => `masterpiece, best quality, a photo of castle number ${i} on a hill at sunset, 8k, détaillé 🏰`,
);
const tokStart = performance.now();
let tokens = 0;
for (const prompt of prompts) tokens += tokenizer.encode(prompt).tokenCount;
const tokMs = performance.now() - tokStart;
console.log(
  `tokenize: ${prompts.length} prompts in ${tokMs.toFixed(0)} ms (${((prompts.length / tokMs) * 1000).toFixed(0)} prompts/s, ${((tokens / tokMs) * 1000).toFixed(0)} tokens/s)`,
);

// Random weights with the SD1.5 text encoder's shapes, written as a Hugging Face text_encoder checkpoint.
const c = SD15_CLIP_TEXT_CONFIG;
const random = (shape: number[]) => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (Math.random() - 0.5) * 0.04;
  return { dtype: 'F32' as const, shape, data };
};
const ones = (n: number) => ({ dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(1) });
const tensors: Parameters<typeof encodeSafetensors>[0] = {
  'text_model.embeddings.token_embedding.weight': random([c.vocab_size, c.hidden_size]),
  'text_model.embeddings.position_embedding.weight': random([c.max_position_embeddings, c.hidden_size]),
  'text_model.final_layer_norm.weight': ones(c.hidden_size),
  'text_model.final_layer_norm.bias': random([c.hidden_size]),
};
for (let i = 0; i < c.num_hidden_layers; i++) {
  const at = `text_model.encoder.layers.${i}.`;
  for (const norm of ['layer_norm1', 'layer_norm2']) {
    tensors[`${at}${norm}.weight`] = ones(c.hidden_size);
    tensors[`${at}${norm}.bias`] = random([c.hidden_size]);
  }
  for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
    tensors[`${at}self_attn.${proj}.weight`] = random([c.hidden_size, c.hidden_size]);
    tensors[`${at}self_attn.${proj}.bias`] = random([c.hidden_size]);
  }
  tensors[`${at}mlp.fc1.weight`] = random([c.intermediate_size, c.hidden_size]);
  tensors[`${at}mlp.fc1.bias`] = random([c.intermediate_size]);
  tensors[`${at}mlp.fc2.weight`] = random([c.hidden_size, c.intermediate_size]);
  tensors[`${at}mlp.fc2.bias`] = random([c.hidden_size]);
}
const checkpoint = SafetensorsFile.fromBytes(encodeSafetensors(tensors));
const modelStart = performance.now();
const model = await loadClipTextModel(checkpoint, {
  config: { num_attention_heads: c.num_attention_heads },
});
console.log(
  `text encoder load (SD1.5 shape, from memory): ${(performance.now() - modelStart).toFixed(0)} ms`,
);

const ids = prompts.slice(0, batch).map((prompt) => tokenizer.encode(prompt).ids);
tf.dispose(model.encode(ids)); // warm-up
const runs = 5;
const encodeStart = performance.now();
for (let r = 0; r < runs; r++) {
  const output = model.encode(ids);
  await output.data();
  output.dispose();
}
const encodeMs = (performance.now() - encodeStart) / runs;
console.log(
  `text encoder [${batch},77,768] on ${backend.name}: ${encodeMs.toFixed(1)} ms per call (mean of ${runs})`,
);

const cache = new PromptEmbeddingCache({ maxBytes: 64 * 77 * 768 * 4 });
const negative = 'lowres, bad anatomy, bad hands, cropped, worst quality';
const cacheStart = performance.now();
for (let i = 0; i < 10; i++) {
  const output = await cache.getOrCompute({ model: 'bench', prompt: negative }, () =>
    encodeTokenizedPrompt(model, tokenizePrompt(tokenizer, negative)),
  );
  await output.data();
  output.dispose();
}
const { hits, misses } = cache.stats;
console.log(
  `cached negative prompt x10: ${(performance.now() - cacheStart).toFixed(1)} ms total (hits ${hits}, misses ${misses})`,
);
cache.clear();
model.dispose();
