/**
 * Checkpoint key mapping. Models declare parameters under their original ldm/cldm names (relative to the
 * component prefix); a {@link KeyMapping} says where each one lives in a given file layout.
 */

/** The four loadable components of a ControlNet + SD1.5 setup. */
export type Component = 'unet' | 'controlnet' | 'vae-decoder' | 'vae-encoder';

/** Where a model's parameters are found in a file. */
export interface KeyMapping {
  /** File keys that may hold the parameter (first present one wins). */
  fileKeys(name: string): string[];
  /** Whether a file key belongs to this component (keys that do and map to nothing are "unexpected"). */
  belongs(fileKey: string): boolean;
}

/** Prefix of each component in the original single-file ControlLDM checkpoint. */
export const ORIGINAL_PREFIXES: Record<Component, string> = {
  unet: 'model.diffusion_model.',
  controlnet: 'control_model.',
  'vae-decoder': 'first_stage_model.',
  'vae-encoder': 'first_stage_model.',
};

function vaeBelongs(component: Component, rest: string): boolean {
  if (component === 'vae-decoder') return rest.startsWith('decoder.') || rest.startsWith('post_quant_conv.');
  return rest.startsWith('encoder.') || rest.startsWith('quant_conv.');
}

/**
 * The original layout (`control_model.*`, `model.diffusion_model.*`, `first_stage_model.*`). `prefix` overrides
 * the component prefix, e.g. '' for a ControlNet file saved without `control_model.`.
 */
export function originalLayout(component: Component, prefix = ORIGINAL_PREFIXES[component]): KeyMapping {
  const isVae = component === 'vae-decoder' || component === 'vae-encoder';
  return {
    fileKeys: (name) => [prefix + name],
    belongs: (key) => key.startsWith(prefix) && (!isVae || vaeBelongs(component, key.slice(prefix.length))),
  };
}

const RESNET_RENAMES: Record<string, string> = {
  'in_layers.0': 'norm1',
  'in_layers.2': 'conv1',
  'emb_layers.1': 'time_emb_proj',
  'out_layers.0': 'norm2',
  'out_layers.3': 'conv2',
  skip_connection: 'conv_shortcut',
};

function renameResnet(rest: string): string {
  for (const [from, to] of Object.entries(RESNET_RENAMES)) {
    if (rest.startsWith(`${from}.`)) return to + rest.slice(from.length);
  }
  return rest;
}

/** Geometry of the UNet needed to number diffusers blocks. */
export interface UNetGeometry {
  num_res_blocks: number;
  channel_mult: number[];
}

/** A renaming rule: a pattern over original names and how to build the new name from its groups. */
type Rule<T> = [RegExp, (groups: string[]) => T];

function applyRules<T>(rules: Rule<T>[], name: string): T | undefined {
  for (const [pattern, build] of rules) {
    const match = name.match(pattern);
    if (match) return build(match.map((g) => g ?? ''));
  }
  return undefined;
}

/** Original UNet/ControlNet parameter name -> diffusers UNet2DConditionModel / ControlNetModel name. */
export function unetNameToDiffusers(name: string, geometry: UNetGeometry): string {
  const perLevel = geometry.num_res_blocks + 1;
  const rules: Rule<string>[] = [
    [/^time_embed\.(0|2)\.(.*)$/, ([, i, rest]) => `time_embedding.linear_${i === '0' ? 1 : 2}.${rest}`],
    [/^input_blocks\.0\.0\.(.*)$/, ([, rest]) => `conv_in.${rest}`],
    [
      /^input_blocks\.(\d+)\.(\d+)\.(.*)$/,
      ([, block, layer, rest]) => {
        const index = Number(block) - 1;
        const level = Math.floor(index / perLevel);
        const slot = index % perLevel;
        if (slot === geometry.num_res_blocks) {
          return `down_blocks.${level}.downsamplers.0.conv.${rest!.replace(/^op\./, '')}`;
        }
        if (layer === '0') return `down_blocks.${level}.resnets.${slot}.${renameResnet(rest!)}`;
        return `down_blocks.${level}.attentions.${slot}.${rest}`;
      },
    ],
    [
      /^middle_block\.(\d)\.(.*)$/,
      ([, layer, rest]) =>
        layer === '1'
          ? `mid_block.attentions.0.${rest}`
          : `mid_block.resnets.${layer === '0' ? 0 : 1}.${renameResnet(rest!)}`,
    ],
    [
      /^output_blocks\.(\d+)\.(\d+)\.(.*)$/,
      ([, block, layer, rest]) => {
        const index = Number(block);
        const level = Math.floor(index / perLevel);
        const slot = index % perLevel;
        if (layer === '0') return `up_blocks.${level}.resnets.${slot}.${renameResnet(rest!)}`;
        // Only Upsample has a `conv` child; a SpatialTransformer's children are norm/proj_*/transformer_blocks.
        if (rest!.startsWith('conv.')) return `up_blocks.${level}.upsamplers.0.${rest}`;
        return `up_blocks.${level}.attentions.${slot}.${rest}`;
      },
    ],
    [/^out\.(0|2)\.(.*)$/, ([, i, rest]) => `${i === '0' ? 'conv_norm_out' : 'conv_out'}.${rest}`],
    [
      /^input_hint_block\.(\d+)\.(.*)$/,
      ([, i, rest]) => {
        const index = Number(i);
        if (index === 0) return `controlnet_cond_embedding.conv_in.${rest}`;
        if (index === 14) return `controlnet_cond_embedding.conv_out.${rest}`;
        return `controlnet_cond_embedding.blocks.${index / 2 - 1}.${rest}`;
      },
    ],
    [/^zero_convs\.(\d+)\.0\.(.*)$/, ([, i, rest]) => `controlnet_down_blocks.${i}.${rest}`],
    [/^middle_block_out\.0\.(.*)$/, ([, rest]) => `controlnet_mid_block.${rest}`],
  ];
  const mapped = applyRules(rules, name);
  if (mapped === undefined) throw new Error(`no diffusers name for UNet parameter ${name}`);
  return mapped;
}

const VAE_ATTENTION_RENAMES: Record<string, [string, string]> = {
  norm: ['group_norm', 'group_norm'],
  q: ['to_q', 'query'],
  k: ['to_k', 'key'],
  v: ['to_v', 'value'],
  proj_out: ['to_out.0', 'proj_attn'],
};

/**
 * Original VAE parameter name -> diffusers AutoencoderKL names (current naming first, then the pre-0.14
 * `query/key/value/proj_attn` naming that older checkpoints still use).
 */
export function vaeNameToDiffusers(name: string, levels: number): string[] {
  const shortcut = (rest: string) => rest.replace(/^nin_shortcut\./, 'conv_shortcut.');
  const rules: Rule<string[]>[] = [
    [
      /^(encoder|decoder)\.(down|up)\.(\d+)\.(?:block\.(\d+)|(downsample|upsample))\.(.*)$/,
      ([, side, direction, level, block, sampler, rest]) => {
        const index = direction === 'up' ? levels - 1 - Number(level) : Number(level);
        const group = `${side}.${direction}_blocks.${index}`;
        if (sampler) return [`${group}.${sampler}rs.0.${rest}`];
        return [`${group}.resnets.${block}.${shortcut(rest!)}`];
      },
    ],
    [
      /^(encoder|decoder)\.mid\.block_(1|2)\.(.*)$/,
      ([, side, i, rest]) => [`${side}.mid_block.resnets.${Number(i) - 1}.${shortcut(rest!)}`],
    ],
    [
      /^(encoder|decoder)\.mid\.attn_1\.(norm|q|k|v|proj_out)\.(.*)$/,
      ([, side, layer, rest]) => {
        const names = VAE_ATTENTION_RENAMES[layer!]!;
        return [...new Set(names)].map((n) => `${side}.mid_block.attentions.0.${n}.${rest}`);
      },
    ],
    [/^(encoder|decoder)\.norm_out\.(.*)$/, ([, side, rest]) => [`${side}.conv_norm_out.${rest}`]],
  ];
  return applyRules(rules, name) ?? [name];
}

/** The diffusers layout (`diffusion_pytorch_model[.fp16].safetensors` of one component). */
export function diffusersLayout(
  component: Component,
  geometry: UNetGeometry | { ch_mult: number[] },
): KeyMapping {
  if (component === 'unet' || component === 'controlnet') {
    const g = geometry as UNetGeometry;
    return { fileKeys: (name) => [unetNameToDiffusers(name, g)], belongs: () => true };
  }
  const levels = (geometry as { ch_mult: number[] }).ch_mult.length;
  return {
    fileKeys: (name) => vaeNameToDiffusers(name, levels),
    belongs: (key) => vaeBelongs(component, key),
  };
}
