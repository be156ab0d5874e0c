import {
  type ControlNetConfig,
  controlNetConfigFor,
  type UNetConfig,
  type VaeConfig,
} from '../models/config.ts';
import type { ClipTextConfig } from '../text/model.ts';

/**
 * The trained built-in model ("contour-circles-tiny"): the SD1.5 structure at toy width, small enough to train on
 * two CPU cores in about an hour and to sample a 64x64 image in about a second on wasm.
 *
 * Latent space: the worker's pipeline samples 4-channel latents at 1/8 of the image size, so the base model is a
 * tiny-latent model whose latent is a fixed (not learned) 8x8 box downsampling of the image (RGB means + the
 * grey-level spread of the block, see `latent.ts`); only the decoder back to pixels is learned.
 */

/** Image size the built-in model is trained and evaluated at. */
export const TINY_IMAGE_SIZE = 64;

/** A tiny CLIP text tower (frozen, seeded), real vocabulary and 77-token context so the real tokenizer drives it. */
export const TINY_CLIP_CONFIG: ClipTextConfig = {
  vocab_size: 49408,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

/** Two levels (8x8, 4x4 latent), attention with cross-attention on the text at both. */
export const TINY_UNET_CONFIG: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  model_channels: 64,
  attention_resolutions: [2],
  num_res_blocks: 1,
  channel_mult: [1, 2],
  num_heads: 4,
  transformer_depth: 1,
  context_dim: TINY_CLIP_CONFIG.hidden_size,
  use_linear_in_transformer: false,
};

/** The ControlNet of {@link TINY_UNET_CONFIG} (standard hint encoder: 64x64 control map -> 8x8). */
export const TINY_CONTROLNET_CONFIG: ControlNetConfig = controlNetConfigFor(TINY_UNET_CONFIG);

/** The decoder from the 8x8x4 latent back to 64x64 RGB (x8 upsampling, one res block per level). */
export const TINY_VAE_CONFIG: VaeConfig = {
  embed_dim: 4,
  z_channels: 4,
  in_channels: 3,
  out_ch: 3,
  ch: 32,
  ch_mult: [1, 1, 2, 2],
  num_res_blocks: 0,
  double_z: true,
  scale_factor: 1,
};

/** A much smaller config for CI tests of the trainer (seconds per step on wasm). */
export const TEST_UNET_CONFIG: UNetConfig = {
  ...TINY_UNET_CONFIG,
  model_channels: 32,
  attention_resolutions: [2],
  num_heads: 2,
};

/** The ControlNet of {@link TEST_UNET_CONFIG}. */
export const TEST_CONTROLNET_CONFIG: ControlNetConfig = {
  ...TINY_CONTROLNET_CONFIG,
  model_channels: 32,
  attention_resolutions: [2],
  num_heads: 2,
};
