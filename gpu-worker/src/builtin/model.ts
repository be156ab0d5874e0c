import type { ControlType } from '@contour/shared/contracts';
import * as tf from '@tensorflow/tfjs';
import {
  type ControlNetConfig,
  controlNetConfigFor,
  type UNetConfig,
  type VaeConfig,
} from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import type { ParamStore } from '../models/params.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import { type ClipTextConfig, ClipTextModel, type ClipTextWeights } from '../text/model.ts';
import { builtinParameter, ldmParameterRole, type ParameterRole } from './weights.ts';

/** Name the built-in model is reported under in /v1/models and in every result. */
export const BUILTIN_BASE_NAME = 'contour-builtin-tiny-sd15';

/**
 * A tiny CLIP text tower with the real vocabulary and context length (so the real tokenizer drives it) and
 * SD1.5's structure: pre-LN blocks, causal mask, quick-GELU.
 */
export const BUILTIN_CLIP_CONFIG: ClipTextConfig = {
  vocab_size: 49408,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

/**
 * SD1.5's UNet layout (4 levels, attention at 1/2/4, two res blocks per level, cross-attention on the text)
 * with 32 base channels, the width of the parity fixtures, so a 256x256 20-step job runs in seconds on wasm.
 */
export const BUILTIN_UNET_CONFIG: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  model_channels: 32,
  attention_resolutions: [4],
  num_res_blocks: 2,
  channel_mult: [1, 2, 2, 2],
  num_heads: 2,
  transformer_depth: 1,
  context_dim: BUILTIN_CLIP_CONFIG.hidden_size,
  use_linear_in_transformer: false,
};

/** The ControlNet matching {@link BUILTIN_UNET_CONFIG}. */
export const BUILTIN_CONTROLNET_CONFIG: ControlNetConfig = controlNetConfigFor(BUILTIN_UNET_CONFIG);

/** SD1.5's VAE decoder layout (x8 upsampling, mid attention) with 32 base channels and one res block per level. */
export const BUILTIN_VAE_CONFIG: VaeConfig = {
  embed_dim: 4,
  z_channels: 4,
  in_channels: 3,
  out_ch: 3,
  ch: 32,
  ch_mult: [1, 2, 2, 2],
  num_res_blocks: 1,
  double_z: true,
  scale_factor: 0.18215,
};

/** Fills every declared parameter of an ldm model from {@link builtinParameter}. */
function fillParams(component: string, params: ParamStore): void {
  for (const [name, { data }] of builtinLdmTensors(component, params)) params.setFromTorch(name, data);
}

/** A tensor in PyTorch layout, as a checkpoint stores it. */
export interface TorchTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * The built-in text encoder's parameters under their Hugging Face `CLIPTextModel` names (without the
 * `text_model.` prefix), in PyTorch layout: what a `text_encoder/model.safetensors` of this model would hold.
 */
export function builtinClipTensors(): Map<string, TorchTensor> {
  const c = BUILTIN_CLIP_CONFIG;
  const h = c.hidden_size;
  const out = new Map<string, TorchTensor>();
  const add = (name: string, shape: number[], role: ParameterRole) =>
    out.set(name, { shape, data: builtinParameter('clip', name, shape, role) });
  const linear = (name: string, inputs: number, outputs: number) => {
    add(`${name}.weight`, [outputs, inputs], 'weight');
    add(`${name}.bias`, [outputs], 'bias');
  };
  const norm = (name: string) => {
    add(`${name}.weight`, [h], 'norm-scale');
    add(`${name}.bias`, [h], 'norm-shift');
  };
  add('embeddings.token_embedding.weight', [c.vocab_size, h], 'embedding');
  add('embeddings.position_embedding.weight', [c.max_position_embeddings, h], 'embedding');
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const at = `encoder.layers.${i}.`;
    norm(`${at}layer_norm1`);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) linear(`${at}self_attn.${proj}`, h, h);
    norm(`${at}layer_norm2`);
    linear(`${at}mlp.fc1`, h, c.intermediate_size);
    linear(`${at}mlp.fc2`, c.intermediate_size, h);
  }
  norm('final_layer_norm');
  return out;
}

/** The built-in text encoder. */
export function createBuiltinClip(): ClipTextModel {
  const tensors = builtinClipTensors();
  const tensor = (name: string) => {
    const { shape, data } = tensors.get(name)!;
    return tf.tensor(data, shape);
  };
  // ClipTextWeights holds Linear weights as [in, out]; PyTorch stores [out, in].
  const linear = (name: string) => ({
    w: tf.tidy(() => tensor(`${name}.weight`).transpose()) as tf.Tensor2D,
    b: tensor(`${name}.bias`) as tf.Tensor1D,
  });
  const norm = (name: string) => ({
    gamma: tensor(`${name}.weight`) as tf.Tensor1D,
    beta: tensor(`${name}.bias`) as tf.Tensor1D,
  });
  const c = BUILTIN_CLIP_CONFIG;
  const weights: ClipTextWeights = {
    tokenEmbedding: tensor('embeddings.token_embedding.weight') as tf.Tensor2D,
    positionEmbedding: tensor('embeddings.position_embedding.weight') as tf.Tensor2D,
    layers: Array.from({ length: c.num_hidden_layers }, (_, i) => {
      const at = `encoder.layers.${i}.`;
      return {
        layerNorm1: norm(`${at}layer_norm1`),
        q: linear(`${at}self_attn.q_proj`),
        k: linear(`${at}self_attn.k_proj`),
        v: linear(`${at}self_attn.v_proj`),
        out: linear(`${at}self_attn.out_proj`),
        layerNorm2: norm(`${at}layer_norm2`),
        fc1: linear(`${at}mlp.fc1`),
        fc2: linear(`${at}mlp.fc2`),
      };
    }),
    finalLayerNorm: norm('final_layer_norm'),
  };
  return new ClipTextModel(c, weights);
}

/**
 * The parameters of a built-in ldm model (UNet, ControlNet, VAE decoder) under their original checkpoint names
 * (relative to the model's prefix), in PyTorch layout. `component` is `unet`, `vae` or `controlnet-<type>`.
 */
export function builtinLdmTensors(component: string, params: ParamStore): Map<string, TorchTensor> {
  const out = new Map<string, TorchTensor>();
  for (const [name, shape] of params.specs) {
    out.set(name, { shape, data: builtinParameter(component, name, shape, ldmParameterRole(name, shape)) });
  }
  return out;
}

/** The built-in UNet. */
export function createBuiltinUNet(): UNetModel {
  const unet = new UNetModel(BUILTIN_UNET_CONFIG);
  fillParams('unet', unet.params);
  return unet;
}

/** The built-in VAE decoder. */
export function createBuiltinVaeDecoder(): VaeDecoder {
  const vae = new VaeDecoder(BUILTIN_VAE_CONFIG);
  fillParams('vae', vae.params);
  return vae;
}

/**
 * A VAE encoder for the built-in model's layout (seeded, untrained: the built-in model was trained without
 * one), so img2img and inpaint run end to end; `config` is the decoder's.
 */
export function createBuiltinVaeEncoder(config: VaeConfig = BUILTIN_VAE_CONFIG): VaeEncoder {
  const vae = new VaeEncoder(config);
  fillParams('vae-encoder', vae.params);
  return vae;
}

/** The built-in ControlNet head of one control type (each type has its own weights). */
export function createBuiltinControlNet(type: ControlType): ControlNetModel {
  const net = new ControlNetModel(BUILTIN_CONTROLNET_CONFIG);
  fillParams(`controlnet-${type}`, net.params);
  return net;
}
