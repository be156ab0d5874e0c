/**
 * The original ControlNet code's reference fixtures (test/fixtures/parity, shipped to GPU hosts for `doctor`):
 * their compact config, and the error measure every parity check uses.
 */
import {
  type ControlNetConfig,
  controlNetConfigFor,
  type UNetConfig,
  type VaeConfig,
} from '../models/config.ts';

/** The small SD1.5-shaped configuration the reference fixtures were produced with (`__metadata__.config`). */
export interface ReferenceConfig {
  unet: UNetConfig;
  controlnet: ControlNetConfig;
  vae: VaeConfig;
}

/** Reads the reference's compact config into the ldm-style config objects. */
export function referenceConfig(metadata: Record<string, string>): ReferenceConfig {
  const raw = JSON.parse(metadata['config']!) as {
    mc: number;
    attn: number[];
    nrb: number;
    mult: number[];
    heads: number;
    ctx: number;
    vae_ch: number;
    vae_mult: number[];
  };
  const unet = {
    in_channels: 4,
    out_channels: 4,
    model_channels: raw.mc,
    attention_resolutions: raw.attn,
    num_res_blocks: raw.nrb,
    channel_mult: raw.mult,
    num_heads: raw.heads,
    transformer_depth: 1,
    context_dim: raw.ctx,
    use_linear_in_transformer: false,
  };
  return {
    unet,
    controlnet: controlNetConfigFor(unet),
    // The fixture README: decoder with num_res_blocks 1, z 4, post_quant_conv 4->4.
    vae: {
      embed_dim: 4,
      z_channels: 4,
      in_channels: 3,
      out_ch: 3,
      ch: raw.vae_ch,
      ch_mult: raw.vae_mult,
      num_res_blocks: 1,
      double_z: true,
      scale_factor: 0.18215,
    },
  };
}

/** max |actual - expected| / max |expected|: relative error against the reference's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}
