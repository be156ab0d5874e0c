import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlNetConfig, UNetConfig, VaeConfig } from '../models/config.ts';
import { unetConfigToDiffusers } from '../models/config.ts';
import type { ParamStore } from '../models/params.ts';
import { type Component, diffusersLayout, originalLayout } from './keymap.ts';
import { matchKeys, WeightLoadError } from './load.ts';
import { encodeSafetensors, type SafetensorsFile, type SafetensorsTensorInput } from './safetensors.ts';

/**
 * Rewrites one component of an original-layout checkpoint in the diffusers layout (names, and 1x1-conv VAE
 * attention weights as Linear [out, in]). `specs` are the component model's declared parameters.
 */
export async function originalToDiffusersTensors(
  file: SafetensorsFile,
  component: Component,
  params: ParamStore,
  geometry: Parameters<typeof diffusersLayout>[1],
  dtype: 'F32' | 'F16' = 'F32',
): Promise<Record<string, SafetensorsTensorInput>> {
  const { fileKeyOf, report } = matchKeys(params.specs, file.tensors, originalLayout(component));
  if (report.missing.length || report.misshaped.length) throw new WeightLoadError(report);
  const target = diffusersLayout(component, geometry);
  const isVae = component === 'vae-decoder' || component === 'vae-encoder';
  const out: Record<string, SafetensorsTensorInput> = {};
  for (const [name, shape] of params.specs) {
    const diffusersName = target.fileKeys(name)[0]!;
    const vaeAttention = isVae && /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(name);
    out[diffusersName] = {
      dtype,
      shape: vaeAttention ? shape.slice(0, 2) : shape,
      data: await file.readFloat32(fileKeyOf.get(name)!),
    };
  }
  return out;
}

/** diffusers config.json for a ControlNetModel. */
export function controlNetConfigToDiffusers(config: ControlNetConfig): Record<string, unknown> {
  const { up_block_types: _up, out_channels: _out, ...rest } = unetConfigToDiffusers(config);
  return {
    _class_name: 'ControlNetModel',
    ...rest,
    conditioning_channels: config.hint_channels,
    conditioning_embedding_out_channels: [16, 32, 96, 256],
  };
}

/** diffusers config.json for an AutoencoderKL. */
export function vaeConfigToDiffusers(config: VaeConfig): Record<string, unknown> {
  return {
    _class_name: 'AutoencoderKL',
    in_channels: config.in_channels,
    out_channels: config.out_ch,
    latent_channels: config.z_channels,
    block_out_channels: config.ch_mult.map((m) => m * config.ch),
    layers_per_block: config.num_res_blocks,
    scaling_factor: config.scale_factor,
  };
}

/** Writes a diffusers component folder: config.json + diffusion_pytorch_model.safetensors. */
export async function writeDiffusersComponent(
  dir: string,
  config: Record<string, unknown>,
  tensors: Record<string, SafetensorsTensorInput>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(join(dir, 'diffusion_pytorch_model.safetensors'), encodeSafetensors(tensors));
}

/** diffusers config.json for a UNet2DConditionModel. */
export function unetDiffusersConfig(config: UNetConfig): Record<string, unknown> {
  return { _class_name: 'UNet2DConditionModel', ...unetConfigToDiffusers(config) };
}
