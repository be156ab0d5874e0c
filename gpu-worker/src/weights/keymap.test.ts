import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SD15_CONTROLNET_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import { type Component, diffusersLayout, originalLayout } from './keymap.ts';
import { matchKeys } from './load.ts';

/** Every key and PyTorch shape of the real SD1.5 ControlLDM checkpoint (see test/fixtures/README.md). */
const manifest = new Map(
  Object.entries(
    JSON.parse(
      readFileSync(
        fileURLToPath(new URL('../../test/fixtures/sd15_controlldm_manifest.json', import.meta.url)),
        'utf8',
      ),
    ) as Record<string, number[]>,
  ).map(([key, shape]) => [key, { shape }]),
);

// Building the models only declares parameters: no tensor is allocated.
const models: Record<Component, { params: { specs: ReadonlyMap<string, number[]> } }> = {
  unet: new UNetModel(SD15_UNET_CONFIG),
  controlnet: new ControlNetModel(SD15_CONTROLNET_CONFIG),
  'vae-decoder': new VaeDecoder(SD15_VAE_CONFIG),
  'vae-encoder': new VaeEncoder(SD15_VAE_CONFIG),
};

const count = (specs: ReadonlyMap<string, number[]>) =>
  [...specs.values()].reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0);

describe('original checkpoint layout against the SD1.5 ControlLDM manifest', () => {
  it.each(Object.keys(models) as Component[])(
    '%s: every parameter present with its shape, nothing unused',
    (c) => {
      const { report } = matchKeys(models[c].params.specs, manifest, originalLayout(c));
      expect(report).toEqual({ missing: [], unexpected: [], misshaped: [] });
    },
  );

  it('accounts for every key of the checkpoint exactly once', () => {
    const used = new Map<string, Component>();
    for (const c of Object.keys(models) as Component[]) {
      const { fileKeyOf } = matchKeys(models[c].params.specs, manifest, originalLayout(c));
      for (const key of fileKeyOf.values()) {
        expect(used.has(key), key).toBe(false);
        used.set(key, c);
      }
    }
    expect([...manifest.keys()].filter((key) => !used.has(key))).toEqual([]);
    expect(used.size).toBe(1274);
  });

  it('has the published parameter counts', () => {
    expect(count(models.controlnet.params.specs)).toBe(361_279_120);
    expect(count(models.unet.params.specs)).toBe(859_520_964);
    expect(models.controlnet.params.specs.size).toBe(340);
    expect(models.unet.params.specs.size).toBe(686);
  });
});

describe('diffusers layout names', () => {
  /** Names (and PyTorch shapes) as diffusers' SD1.5 UNet2DConditionModel / ControlNetModel / AutoencoderKL use them. */
  const known: Record<Component, Record<string, number[]>> = {
    unet: {
      'time_embedding.linear_1.weight': [1280, 320],
      'conv_in.weight': [320, 4, 3, 3],
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight': [320, 320],
      'down_blocks.0.downsamplers.0.conv.weight': [320, 320, 3, 3],
      'down_blocks.1.resnets.0.conv_shortcut.weight': [640, 320, 1, 1],
      'down_blocks.3.resnets.1.conv2.weight': [1280, 1280, 3, 3],
      'mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight': [10240, 1280],
      'mid_block.resnets.1.time_emb_proj.weight': [1280, 1280],
      'up_blocks.0.upsamplers.0.conv.weight': [1280, 1280, 3, 3],
      'up_blocks.1.resnets.0.conv_shortcut.weight': [1280, 2560, 1, 1],
      'up_blocks.2.upsamplers.0.conv.weight': [640, 640, 3, 3],
      'up_blocks.3.attentions.2.proj_out.weight': [320, 320, 1, 1],
      'conv_norm_out.weight': [320],
      'conv_out.weight': [4, 320, 3, 3],
    },
    controlnet: {
      'controlnet_cond_embedding.conv_in.weight': [16, 3, 3, 3],
      'controlnet_cond_embedding.blocks.5.weight': [256, 96, 3, 3],
      'controlnet_cond_embedding.conv_out.weight': [320, 256, 3, 3],
      'controlnet_down_blocks.11.weight': [1280, 1280, 1, 1],
      'controlnet_mid_block.weight': [1280, 1280, 1, 1],
      'down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight': [1280, 768],
    },
    'vae-decoder': {
      'post_quant_conv.weight': [4, 4, 1, 1],
      'decoder.up_blocks.0.resnets.0.conv1.weight': [512, 512, 3, 3],
      'decoder.up_blocks.3.resnets.0.conv_shortcut.weight': [128, 256, 1, 1],
      'decoder.up_blocks.0.upsamplers.0.conv.weight': [512, 512, 3, 3],
      'decoder.mid_block.attentions.0.to_q.weight': [512, 512, 1, 1],
      'decoder.mid_block.attentions.0.group_norm.weight': [512],
      'decoder.conv_norm_out.weight': [128],
    },
    'vae-encoder': {
      'encoder.down_blocks.1.resnets.0.conv_shortcut.weight': [256, 128, 1, 1],
      'encoder.down_blocks.2.downsamplers.0.conv.weight': [512, 512, 3, 3],
      'encoder.mid_block.attentions.0.to_out.0.weight': [512, 512, 1, 1],
      'encoder.conv_out.weight': [8, 512, 3, 3],
      'quant_conv.weight': [8, 8, 1, 1],
    },
  };

  it.each(Object.keys(models) as Component[])('%s: a one-to-one renaming containing the known names', (c) => {
    const mapping = diffusersLayout(c, c.startsWith('vae') ? SD15_VAE_CONFIG : SD15_UNET_CONFIG);
    const renamed = new Map<string, number[]>();
    for (const [name, shape] of models[c].params.specs) renamed.set(mapping.fileKeys(name)[0]!, shape);
    expect(renamed.size).toBe(models[c].params.specs.size);
    for (const [name, shape] of Object.entries(known[c])) expect(renamed.get(name), name).toEqual(shape);
  });

  it('finds legacy VAE attention names (query/key/value/proj_attn)', () => {
    const mapping = diffusersLayout('vae-decoder', SD15_VAE_CONFIG);
    expect(mapping.fileKeys('decoder.mid.attn_1.proj_out.bias')).toEqual([
      'decoder.mid_block.attentions.0.to_out.0.bias',
      'decoder.mid_block.attentions.0.proj_attn.bias',
    ]);
  });
});
