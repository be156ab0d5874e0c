import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { diffusersSpecs, MANIFEST, type Manifest, originalSpecs } from '../bench/synthetic-weights.ts';
import { SD15_CONTROLNET_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from '../src/models/config.ts';
import { ControlNetModel } from '../src/models/controlnet.ts';
import { UNetModel } from '../src/models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../src/models/vae.ts';
import { type Component, diffusersLayout, originalLayout } from '../src/weights/keymap.ts';
import { matchKeys } from '../src/weights/load.ts';

const manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as Manifest;
const keysOf = (specs: ReturnType<typeof originalSpecs>) =>
  new Map(specs.map((s) => [s.key, { shape: s.shape }]));

// Full-size SD1.5 models only declare their parameters here (nothing is allocated until weights load).
const models: [Component, ReadonlyMap<string, number[]>][] = [
  ['unet', new UNetModel(SD15_UNET_CONFIG).params.specs],
  ['controlnet', new ControlNetModel(SD15_CONTROLNET_CONFIG).params.specs],
  ['vae-decoder', new VaeDecoder(SD15_VAE_CONFIG).params.specs],
  ['vae-encoder', new VaeEncoder(SD15_VAE_CONFIG).params.specs],
];

describe('synthetic full-size checkpoints (bench/synthetic-weights.ts) carry exactly the keys the loaders read', () => {
  it('original single files: the ControlLDM layout of control_sd15_canny and v1-5-pruned-emaonly', () => {
    const file = keysOf(
      originalSpecs(
        manifest,
        ['control_model.', 'model.diffusion_model.', 'first_stage_model.'],
        true,
        'F32',
      ),
    );
    for (const [component, specs] of models) {
      expect(matchKeys(specs, file, originalLayout(component)).report, component).toEqual({
        missing: [],
        unexpected: [],
        misshaped: [],
      });
    }
    expect(file.has('cond_stage_model.transformer.text_model.final_layer_norm.weight')).toBe(true);
  });

  it('diffusers folders: unet/, vae/ and the ControlNet 1.1 folder', () => {
    const unet = keysOf(diffusersSpecs(manifest, 'model.diffusion_model.', 'unet', 'F16'));
    const vae = keysOf(diffusersSpecs(manifest, 'first_stage_model.', 'vae', 'F16'));
    const controlnet = keysOf(diffusersSpecs(manifest, 'control_model.', 'controlnet', 'F16'));
    const files: Record<Component, Map<string, { shape: number[] }>> = {
      unet,
      controlnet,
      'vae-decoder': vae,
      'vae-encoder': vae,
    };
    for (const [component, specs] of models) {
      const geometry =
        component === 'unet'
          ? SD15_UNET_CONFIG
          : component === 'controlnet'
            ? SD15_CONTROLNET_CONFIG
            : SD15_VAE_CONFIG;
      expect(
        matchKeys(specs, files[component], diffusersLayout(component, geometry)).report,
        component,
      ).toEqual({
        missing: [],
        unexpected: [],
        misshaped: [],
      });
    }
  });
});
