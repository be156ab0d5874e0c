/**
 * Model configurations mirroring the `params` of the ldm/cldm yaml files (names kept in their snake_case so a
 * yaml block can be pasted in), with converters from diffusers `config.json`.
 */

/** `UNetModel` / `ControlledUnetModel` params (models/cldm_v15.yaml `unet_config.params`). */
export interface UNetConfig {
  in_channels: number;
  out_channels: number;
  model_channels: number;
  /** Downsample factors (1, 2, 4, ...) at which a SpatialTransformer follows each ResBlock. */
  attention_resolutions: number[];
  num_res_blocks: number;
  channel_mult: number[];
  /** Heads per attention layer; ignored when num_head_channels is set (not -1). */
  num_heads: number;
  num_head_channels?: number;
  transformer_depth: number;
  context_dim: number;
  use_linear_in_transformer: boolean;
}

/** `ControlNet` params (models/cldm_v15.yaml `control_stage_config.params`). */
export interface ControlNetConfig extends Omit<UNetConfig, 'out_channels'> {
  hint_channels: number;
}

/** AutoencoderKL `ddconfig` plus `embed_dim` (the VAE of SD1.5). */
export interface VaeConfig {
  embed_dim: number;
  z_channels: number;
  in_channels: number;
  out_ch: number;
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  double_z: boolean;
  /** Latent scale factor (`scale_factor` in the LatentDiffusion params). */
  scale_factor: number;
}

/** The UNet of Stable Diffusion 1.5 (cldm_v15.yaml). */
export const SD15_UNET_CONFIG: UNetConfig = {
  in_channels: 4,
  out_channels: 4,
  model_channels: 320,
  attention_resolutions: [4, 2, 1],
  num_res_blocks: 2,
  channel_mult: [1, 2, 4, 4],
  num_heads: 8,
  transformer_depth: 1,
  context_dim: 768,
  use_linear_in_transformer: false,
};

/**
 * The ControlNet config of a UNet: cldm builds the trainable copy from the same params (minus the output
 * channels) plus the hint's channel count.
 */
export function controlNetConfigFor(unet: UNetConfig, hintChannels = 3): ControlNetConfig {
  const { out_channels: _outChannels, ...encoder } = unet;
  return { ...encoder, hint_channels: hintChannels };
}

/** The ControlNet of Stable Diffusion 1.5 (cldm_v15.yaml). */
export const SD15_CONTROLNET_CONFIG: ControlNetConfig = controlNetConfigFor(SD15_UNET_CONFIG);

/** The VAE of Stable Diffusion 1.5. */
export const SD15_VAE_CONFIG: VaeConfig = {
  embed_dim: 4,
  z_channels: 4,
  in_channels: 3,
  out_ch: 3,
  ch: 128,
  ch_mult: [1, 2, 4, 4],
  num_res_blocks: 2,
  double_z: true,
  scale_factor: 0.18215,
};

/** Head count and head width of an attention layer with `channels` channels. */
export function attentionHeads(config: Omit<UNetConfig, 'out_channels'>, channels: number): [number, number] {
  const headChannels = config.num_head_channels ?? -1;
  if (headChannels !== -1) return [channels / headChannels, headChannels];
  return [config.num_heads, channels / config.num_heads];
}

/** Raised for a diffusers config.json this code cannot express. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly code: 'config_unsupported' | 'config_invalid',
    message: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

function numberField(config: Json, key: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== 'number')
    throw new ConfigError('config_invalid', `config.json: ${key} must be a number`);
  return value;
}

function numberList(config: Json, key: string): number[] {
  const value = config[key];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number')) {
    throw new ConfigError('config_invalid', `config.json: ${key} must be a list of numbers`);
  }
  return value as number[];
}

/** Shared part of UNet2DConditionModel / ControlNetModel config.json. */
function unetCommonFromDiffusers(config: Json): Omit<UNetConfig, 'out_channels'> {
  const blockOut = numberList(config, 'block_out_channels');
  const modelChannels = blockOut[0]!;
  const downTypes = config['down_block_types'];
  if (!Array.isArray(downTypes) || downTypes.length !== blockOut.length) {
    throw new ConfigError('config_invalid', 'config.json: down_block_types must match block_out_channels');
  }
  const attention: number[] = [];
  downTypes.forEach((type, level) => {
    if (type === 'CrossAttnDownBlock2D') attention.push(2 ** level);
    else if (type !== 'DownBlock2D')
      throw new ConfigError('config_unsupported', `down block type ${String(type)}`);
  });
  const layers = numberField(config, 'layers_per_block', 2);
  // diffusers quirk: in SD1.x configs `attention_head_dim` holds the number of heads.
  const headsField = config['num_attention_heads'] ?? config['attention_head_dim'] ?? 8;
  const heads = Array.isArray(headsField) ? headsField[0] : headsField;
  if (typeof heads !== 'number') throw new ConfigError('config_invalid', 'config.json: attention_head_dim');
  if (Array.isArray(headsField) && !headsField.every((h) => h === heads)) {
    throw new ConfigError('config_unsupported', 'per-level head counts differ (SD2-style head widths)');
  }
  const depth = config['transformer_layers_per_block'] ?? 1;
  if (typeof depth !== 'number') throw new ConfigError('config_unsupported', 'per-level transformer depth');
  return {
    in_channels: numberField(config, 'in_channels', 4),
    model_channels: modelChannels,
    attention_resolutions: attention,
    num_res_blocks: layers,
    channel_mult: blockOut.map((c) => c / modelChannels),
    num_heads: heads,
    transformer_depth: depth,
    context_dim: numberField(config, 'cross_attention_dim', 768),
    use_linear_in_transformer: config['use_linear_projection'] === true,
  };
}

/** UNetConfig from a diffusers UNet2DConditionModel config.json. */
export function unetConfigFromDiffusers(config: Json): UNetConfig {
  return { ...unetCommonFromDiffusers(config), out_channels: numberField(config, 'out_channels', 4) };
}

/** ControlNetConfig from a diffusers ControlNetModel config.json. */
export function controlNetConfigFromDiffusers(config: Json): ControlNetConfig {
  const embed = config['conditioning_embedding_out_channels'];
  if (embed !== undefined && JSON.stringify(embed) !== '[16,32,96,256]') {
    throw new ConfigError(
      'config_unsupported',
      'conditioning_embedding_out_channels other than [16,32,96,256]',
    );
  }
  return {
    ...unetCommonFromDiffusers(config),
    hint_channels: numberField(config, 'conditioning_channels', 3),
  };
}

/** VaeConfig from a diffusers AutoencoderKL config.json. */
export function vaeConfigFromDiffusers(config: Json): VaeConfig {
  const blockOut = numberList(config, 'block_out_channels');
  const ch = blockOut[0]!;
  return {
    embed_dim: numberField(config, 'latent_channels', 4),
    z_channels: numberField(config, 'latent_channels', 4),
    in_channels: numberField(config, 'in_channels', 3),
    out_ch: numberField(config, 'out_channels', 3),
    ch,
    ch_mult: blockOut.map((c) => c / ch),
    num_res_blocks: numberField(config, 'layers_per_block', 2),
    double_z: true,
    scale_factor: numberField(config, 'scaling_factor', 0.18215),
  };
}

/** diffusers config.json for a UNetConfig (used by the layout converter and its round-trip test). */
export function unetConfigToDiffusers(
  config: Omit<UNetConfig, 'out_channels'> & { out_channels?: number },
): Json {
  const down = config.channel_mult.map((_, level) =>
    config.attention_resolutions.includes(2 ** level) ? 'CrossAttnDownBlock2D' : 'DownBlock2D',
  );
  return {
    in_channels: config.in_channels,
    out_channels: config.out_channels ?? 4,
    block_out_channels: config.channel_mult.map((m) => m * config.model_channels),
    down_block_types: down,
    up_block_types: [...down]
      .reverse()
      .map((t) => (t === 'DownBlock2D' ? 'UpBlock2D' : 'CrossAttnUpBlock2D')),
    layers_per_block: config.num_res_blocks,
    attention_head_dim: config.num_heads,
    cross_attention_dim: config.context_dim,
    use_linear_projection: config.use_linear_in_transformer,
    transformer_layers_per_block: config.transformer_depth,
  };
}
