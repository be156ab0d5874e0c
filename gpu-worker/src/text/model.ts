import * as tf from '@tensorflow/tfjs';
import type { Ops } from '../engine/ops.ts';
import { tfOps } from '../engine/tf-ops.ts';
import type { WeightFile } from '../weights/load.ts';
import { openWeightFile } from '../weights/open.ts';
import { ClipError } from './errors.ts';

/** Hyper-parameters of the CLIP text transformer, named as Hugging Face's `CLIPTextConfig`. */
export interface ClipTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: 'quick_gelu' | 'gelu';
  layer_norm_eps: number;
}

/** The text encoder of Stable Diffusion 1.5: OpenAI CLIP ViT-L/14's text tower. */
export const SD15_CLIP_TEXT_CONFIG: ClipTextConfig = {
  vocab_size: 49408,
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

/** Key prefixes of the text model in the checkpoint layouts this loader reads. */
export const CLIP_LAYOUT_PREFIXES = {
  /** Hugging Face `text_encoder/model.safetensors` (CLIPTextModel). */
  huggingface: 'text_model.',
  /** The original Stable Diffusion / ControlNet checkpoint (`FrozenCLIPEmbedder`). */
  original: 'cond_stage_model.transformer.text_model.',
} as const;

/** Which key layout a checkpoint uses; 'auto' picks whichever the file contains. */
export type ClipWeightsLayout = keyof typeof CLIP_LAYOUT_PREFIXES | 'auto';

interface LayerNormWeights {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

/** A linear layer with its weight stored transposed ([in, out]) so the forward pass is x @ w + b. */
interface LinearWeights {
  w: tf.Tensor2D;
  b: tf.Tensor1D;
}

interface EncoderLayerWeights {
  layerNorm1: LayerNormWeights;
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  out: LinearWeights;
  layerNorm2: LayerNormWeights;
  fc1: LinearWeights;
  fc2: LinearWeights;
}

/** All parameters of the text transformer, as tensors in the forward pass's layout. */
export interface ClipTextWeights {
  tokenEmbedding: tf.Tensor2D;
  positionEmbedding: tf.Tensor2D;
  layers: EncoderLayerWeights[];
  finalLayerNorm: LayerNormWeights;
}

/**
 * The CLIP text transformer: token + position embeddings, pre-LN blocks with a causal mask, quick-GELU MLP and a
 * final layer norm. `encode` returns `last_hidden_state`, which is what SD1.5 feeds its UNet.
 */
export class ClipTextModel {
  private disposed = false;

  constructor(
    readonly config: ClipTextConfig,
    private readonly weights: ClipTextWeights,
  ) {
    validateConfig(config);
    checkShapes(config, weights);
  }

  /** `last_hidden_state` [B, T, hidden] for token ids [B, T] (rows of an array, or one flat row-major array). */
  encode(
    ids: tf.Tensor2D | readonly Int32Array[] | Int32Array,
    sequenceLength = this.config.max_position_embeddings,
  ) {
    if (this.disposed) throw new ClipError('clip_bad_config', 'the text model has been disposed');
    const idTensor = this.idTensor(ids, sequenceLength);
    try {
      return tf.tidy(() => this.forward(idTensor));
    } finally {
      if (idTensor !== ids) idTensor.dispose();
    }
  }

  /** Every weight tensor with a stable name (engines hash them to key their own copies). */
  namedWeights(): [string, tf.Tensor][] {
    const { tokenEmbedding, positionEmbedding, layers, finalLayerNorm } = this.weights;
    const out: [string, tf.Tensor][] = [
      ['token_embedding', tokenEmbedding],
      ['position_embedding', positionEmbedding],
      ['final_layer_norm.gamma', finalLayerNorm.gamma],
      ['final_layer_norm.beta', finalLayerNorm.beta],
    ];
    layers.forEach((layer, i) => {
      for (const [part, weights] of Object.entries(layer) as [string, LinearWeights | LayerNormWeights][])
        for (const [key, tensor] of Object.entries(weights) as [string, tf.Tensor][])
          out.push([`layers.${i}.${part}.${key}`, tensor]);
    });
    return out;
  }

  /** Frees the weights. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const { tokenEmbedding, positionEmbedding, layers, finalLayerNorm } = this.weights;
    tf.dispose([tokenEmbedding, positionEmbedding, finalLayerNorm.gamma, finalLayerNorm.beta]);
    for (const layer of layers) {
      for (const part of Object.values(layer) as (LinearWeights | LayerNormWeights)[])
        tf.dispose(Object.values(part));
    }
  }

  /** Checks ids and makes them an int32 [B, T] tensor (the given tensor itself when it is one). */
  idTensor(ids: tf.Tensor2D | readonly Int32Array[] | Int32Array, sequenceLength: number): tf.Tensor2D {
    if (ids instanceof tf.Tensor) {
      if (ids.rank !== 2 || ids.dtype !== 'int32') {
        throw new ClipError(
          'clip_bad_ids',
          `ids must be an int32 [batch, tokens] tensor, got ${ids.dtype} ${ids.shape}`,
        );
      }
      this.checkIdRange(ids.dataSync() as Int32Array, ids.shape[1]);
      return ids;
    }
    const rows = ids instanceof Int32Array ? undefined : ids;
    const length = rows ? (rows[0]?.length ?? 0) : sequenceLength;
    const flat = rows ? new Int32Array(rows.length * length) : (ids as Int32Array);
    if (rows) {
      rows.forEach((row, index) => {
        if (row.length !== length)
          throw new ClipError('clip_bad_ids', 'all id rows must have the same length');
        flat.set(row, index * length);
      });
    }
    if (length === 0 || flat.length === 0 || flat.length % length !== 0) {
      throw new ClipError('clip_bad_ids', `cannot shape ${flat.length} ids into rows of ${length}`);
    }
    this.checkIdRange(flat, length);
    return tf.tensor2d(flat, [flat.length / length, length], 'int32');
  }

  private checkIdRange(flat: Int32Array, length: number): void {
    if (length > this.config.max_position_embeddings) {
      throw new ClipError(
        'clip_bad_ids',
        `at most ${this.config.max_position_embeddings} tokens, got ${length}`,
      );
    }
    for (const id of flat) {
      if (id < 0 || id >= this.config.vocab_size)
        throw new ClipError('clip_bad_ids', `token id ${id} out of range`);
    }
  }

  private forward(ids: tf.Tensor2D): tf.Tensor3D {
    return this.build(tfOps, ids) as tf.Tensor3D;
  }

  /** `last_hidden_state` for int32 ids [B, T] on any backend (the ONNX engine builds its graph from this). */
  build<T>(o: Ops<T>, ids: T): T {
    const [batch, length] = o.shape(ids) as [number, number];
    const { hidden_size: hidden, num_attention_heads: heads, layer_norm_eps: eps } = this.config;
    const headDim = hidden / heads;
    const w = this.weights;
    return o.scope(() => {
      const positions = o.constant(w.positionEmbedding.slice([0, 0], [length, hidden]));
      let x = o.add(o.embedding(w.tokenEmbedding, ids), positions);
      const mask = causalMask(length);
      const splitHeads = (t: T) =>
        o.reshape(o.transpose(o.reshape(t, [batch, length, heads, headDim]), [0, 2, 1, 3]), [
          batch * heads,
          length,
          headDim,
        ]);
      for (const layer of w.layers) {
        const h = o.layerNorm(x, layer.layerNorm1.gamma, layer.layerNorm1.beta, eps);
        const q = splitHeads(o.linear(h, layer.q.w, layer.q.b));
        const k = splitHeads(o.linear(h, layer.k.w, layer.k.b));
        const v = splitHeads(o.linear(h, layer.v.w, layer.v.b));
        const attended = o.reshape(
          o.transpose(
            o.reshape(o.attention(q, k, v, headDim ** -0.5, mask), [batch, heads, length, headDim]),
            [0, 2, 1, 3],
          ),
          [batch, length, hidden],
        );
        x = o.add(x, o.linear(attended, layer.out.w, layer.out.b));
        const m = o.linear(
          o.layerNorm(x, layer.layerNorm2.gamma, layer.layerNorm2.beta, eps),
          layer.fc1.w,
          layer.fc1.b,
        );
        const activated = this.config.hidden_act === 'quick_gelu' ? o.quickGelu(m) : o.gelu(m);
        x = o.add(x, o.linear(activated, layer.fc2.w, layer.fc2.b));
      }
      return o.layerNorm(x, w.finalLayerNorm.gamma, w.finalLayerNorm.beta, eps);
    });
  }
}

/** Additive causal mask [length, length]: token i attends to tokens 0..i only. */
function causalMask(length: number): tf.Tensor2D {
  const values = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) values[i * length + j] = -1e9;
  return tf.tensor2d(values, [length, length]);
}

function validateConfig(config: ClipTextConfig): void {
  const integers = [
    'vocab_size',
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'max_position_embeddings',
  ] as const;
  for (const key of integers) {
    if (!Number.isInteger(config[key]) || config[key] <= 0) {
      throw new ClipError('clip_bad_config', `${key} must be a positive integer, got ${config[key]}`);
    }
  }
  if (config.hidden_size % config.num_attention_heads !== 0) {
    throw new ClipError('clip_bad_config', 'hidden_size must be a multiple of num_attention_heads');
  }
  if (config.hidden_act !== 'quick_gelu' && config.hidden_act !== 'gelu') {
    throw new ClipError('clip_bad_config', `unsupported hidden_act ${String(config.hidden_act)}`);
  }
  if (!(config.layer_norm_eps > 0)) throw new ClipError('clip_bad_config', 'layer_norm_eps must be positive');
}

function checkShapes(config: ClipTextConfig, weights: ClipTextWeights): void {
  const {
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: inner,
    max_position_embeddings: positions,
  } = config;
  const expect = (what: string, tensor: tf.Tensor, shape: number[]) => {
    if (tensor.shape.join() !== shape.join()) {
      throw new ClipError('clip_weights_shape', `${what}: expected [${shape}], got [${tensor.shape}]`);
    }
  };
  if (weights.layers.length !== config.num_hidden_layers) {
    throw new ClipError(
      'clip_weights_shape',
      `config has ${config.num_hidden_layers} layers, weights have ${weights.layers.length}`,
    );
  }
  expect('token_embedding', weights.tokenEmbedding, [vocab, hidden]);
  expect('position_embedding', weights.positionEmbedding, [positions, hidden]);
  const norm = (what: string, { gamma, beta }: LayerNormWeights) => {
    expect(`${what}.weight`, gamma, [hidden]);
    expect(`${what}.bias`, beta, [hidden]);
  };
  norm('final_layer_norm', weights.finalLayerNorm);
  weights.layers.forEach((layer, i) => {
    const lin = (what: string, { w, b }: LinearWeights, inputs: number, outputs: number) => {
      expect(`layers.${i}.${what}.weight (transposed)`, w, [inputs, outputs]);
      expect(`layers.${i}.${what}.bias`, b, [outputs]);
    };
    norm(`layers.${i}.layer_norm1`, layer.layerNorm1);
    norm(`layers.${i}.layer_norm2`, layer.layerNorm2);
    for (const name of ['q', 'k', 'v', 'out'] as const)
      lin(`self_attn.${name}_proj`, layer[name], hidden, hidden);
    lin('mlp.fc1', layer.fc1, hidden, inner);
    lin('mlp.fc2', layer.fc2, inner, hidden);
  });
}

/** Options for {@link loadClipTextModel}. */
export interface LoadClipTextModelOptions {
  /** Key layout; 'auto' (default) detects it. */
  layout?: ClipWeightsLayout;
  /**
   * Hyper-parameters; by default read from the file's `__metadata__.config` (JSON) and completed from the
   * tensor shapes (heads default to hidden_size / 64, as in every CLIP text tower).
   */
  config?: Partial<ClipTextConfig>;
}

/** Finds the key prefix of the text model in a checkpoint. */
export function detectClipLayout(names: Iterable<string>): keyof typeof CLIP_LAYOUT_PREFIXES | undefined {
  const all = new Set(names);
  for (const [layout, prefix] of Object.entries(CLIP_LAYOUT_PREFIXES)) {
    if (all.has(`${prefix}embeddings.token_embedding.weight`))
      return layout as keyof typeof CLIP_LAYOUT_PREFIXES;
  }
  return undefined;
}

/**
 * Loads the CLIP text encoder from a safetensors or PyTorch checkpoint (a path or an open file, which stays open) in the
 * Hugging Face (`text_model.*`) or original SD (`cond_stage_model.transformer.text_model.*`) layout.
 */
export async function loadClipTextModel(
  source: string | WeightFile,
  options: LoadClipTextModelOptions = {},
): Promise<ClipTextModel> {
  const file = typeof source === 'string' ? await openWeightFile(source) : source;
  try {
    const requested = options.layout ?? 'auto';
    const layout = requested === 'auto' ? detectClipLayout(file.tensors.keys()) : requested;
    if (!layout) {
      throw new ClipError(
        'clip_weights_missing',
        `no CLIP text model found (looked for ${Object.values(CLIP_LAYOUT_PREFIXES).join('*, ')}*)`,
      );
    }
    const prefix = CLIP_LAYOUT_PREFIXES[layout];
    const shapeOf = (name: string) => {
      const info = file.tensors.get(prefix + name);
      if (!info) throw new ClipError('clip_weights_missing', `missing tensor ${prefix}${name}`);
      return info.shape;
    };
    const config = resolveConfig(file, prefix, shapeOf, options.config);
    validateConfig(config);
    const tensors: tf.Tensor[] = [];
    const read = async (name: string, transpose = false): Promise<tf.Tensor> => {
      const shape = shapeOf(name);
      const data = await file.readFloat32(prefix + name);
      const tensor = tf.tidy(() => {
        const t = tf.tensor(data, shape, 'float32');
        return transpose ? t.transpose() : t;
      });
      tensors.push(tensor);
      return tensor;
    };
    try {
      const norm = async (name: string): Promise<LayerNormWeights> => ({
        gamma: (await read(`${name}.weight`)) as tf.Tensor1D,
        beta: (await read(`${name}.bias`)) as tf.Tensor1D,
      });
      // PyTorch stores Linear weights as [out, in]; keep them as [in, out].
      const lin = async (name: string): Promise<LinearWeights> => ({
        w: (await read(`${name}.weight`, true)) as tf.Tensor2D,
        b: (await read(`${name}.bias`)) as tf.Tensor1D,
      });
      const layers: EncoderLayerWeights[] = [];
      for (let i = 0; i < config.num_hidden_layers; i++) {
        const at = `encoder.layers.${i}.`;
        layers.push({
          layerNorm1: await norm(`${at}layer_norm1`),
          q: await lin(`${at}self_attn.q_proj`),
          k: await lin(`${at}self_attn.k_proj`),
          v: await lin(`${at}self_attn.v_proj`),
          out: await lin(`${at}self_attn.out_proj`),
          layerNorm2: await norm(`${at}layer_norm2`),
          fc1: await lin(`${at}mlp.fc1`),
          fc2: await lin(`${at}mlp.fc2`),
        });
      }
      const weights: ClipTextWeights = {
        tokenEmbedding: (await read('embeddings.token_embedding.weight')) as tf.Tensor2D,
        positionEmbedding: (await read('embeddings.position_embedding.weight')) as tf.Tensor2D,
        layers,
        finalLayerNorm: await norm('final_layer_norm'),
      };
      return new ClipTextModel(config, weights);
    } catch (error) {
      tf.dispose(tensors);
      throw error;
    }
  } finally {
    if (typeof source === 'string') await file.close();
  }
}

function resolveConfig(
  file: WeightFile,
  prefix: string,
  shapeOf: (name: string) => number[],
  override: Partial<ClipTextConfig> | undefined,
): ClipTextConfig {
  let fromMetadata: Partial<ClipTextConfig> = {};
  const json = file.metadata['config'];
  if (json !== undefined) {
    try {
      fromMetadata = JSON.parse(json) as Partial<ClipTextConfig>;
    } catch {
      throw new ClipError('clip_bad_config', '__metadata__.config is not JSON');
    }
  }
  const [vocab, hidden] = shapeOf('embeddings.token_embedding.weight') as [number, number];
  const layerIndices = new Set<number>();
  const layerKey = new RegExp(`^${prefix.replaceAll('.', '\\.')}encoder\\.layers\\.(\\d+)\\.`);
  for (const name of file.tensors.keys()) {
    const match = layerKey.exec(name);
    if (match) layerIndices.add(Number(match[1]));
  }
  const inferred: ClipTextConfig = {
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: layerIndices.size > 0 ? shapeOf('encoder.layers.0.mlp.fc1.weight')[0]! : 4 * hidden,
    num_hidden_layers: layerIndices.size,
    num_attention_heads: Math.max(1, Math.round(hidden / 64)),
    max_position_embeddings: shapeOf('embeddings.position_embedding.weight')[0]!,
    hidden_act: 'quick_gelu',
    layer_norm_eps: 1e-5,
  };
  const pick = <K extends keyof ClipTextConfig>(key: K): ClipTextConfig[K] =>
    override?.[key] ?? fromMetadata[key] ?? inferred[key];
  return {
    vocab_size: pick('vocab_size'),
    hidden_size: pick('hidden_size'),
    intermediate_size: pick('intermediate_size'),
    num_hidden_layers: pick('num_hidden_layers'),
    num_attention_heads: pick('num_attention_heads'),
    max_position_embeddings: pick('max_position_embeddings'),
    hidden_act: pick('hidden_act'),
    layer_norm_eps: pick('layer_norm_eps'),
  };
}
