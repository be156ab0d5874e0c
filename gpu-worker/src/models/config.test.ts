import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  controlNetConfigFromDiffusers,
  SD15_CONTROLNET_CONFIG,
  SD15_UNET_CONFIG,
  SD15_VAE_CONFIG,
  unetConfigFromDiffusers,
  vaeConfigFromDiffusers,
} from './config.ts';

/** The relevant fields of runwayml/stable-diffusion-v1-5 unet/config.json. */
const sd15Unet = {
  _class_name: 'UNet2DConditionModel',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  in_channels: 4,
  layers_per_block: 2,
  out_channels: 4,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};

describe('diffusers config.json conversion', () => {
  it('reads the SD1.5 UNet, ControlNet and VAE configs as the ldm yaml params', () => {
    const sorted = (c: { attention_resolutions: number[] }) => [...c.attention_resolutions].sort();
    const unet = unetConfigFromDiffusers(sd15Unet);
    expect({ ...unet, attention_resolutions: sorted(unet) }).toEqual({
      ...SD15_UNET_CONFIG,
      attention_resolutions: sorted(SD15_UNET_CONFIG),
    });
    const controlnet = controlNetConfigFromDiffusers({
      ...sd15Unet,
      _class_name: 'ControlNetModel',
      num_attention_heads: null,
      conditioning_embedding_out_channels: [16, 32, 96, 256],
    });
    expect({ ...controlnet, attention_resolutions: sorted(controlnet) }).toEqual({
      ...SD15_CONTROLNET_CONFIG,
      attention_resolutions: sorted(SD15_CONTROLNET_CONFIG),
    });
    expect(
      vaeConfigFromDiffusers({
        _class_name: 'AutoencoderKL',
        block_out_channels: [128, 256, 512, 512],
        in_channels: 3,
        out_channels: 3,
        latent_channels: 4,
        layers_per_block: 2,
      }),
    ).toEqual(SD15_VAE_CONFIG);
  });

  it('refuses what it cannot express, with a code', () => {
    expect(() => unetConfigFromDiffusers({ ...sd15Unet, attention_head_dim: [5, 10, 20, 20] })).toThrow(
      ConfigError,
    );
    expect(() => unetConfigFromDiffusers({ ...sd15Unet, block_out_channels: 'x' })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    expect(() =>
      controlNetConfigFromDiffusers({ ...sd15Unet, conditioning_embedding_out_channels: [16, 32, 96, 128] }),
    ).toThrow(expect.objectContaining({ code: 'config_unsupported' }));
  });
});
