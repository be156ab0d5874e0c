import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../backend.ts';
import {
  BUILTIN_CLIP_CONFIG,
  BUILTIN_CONTROLNET_CONFIG,
  BUILTIN_UNET_CONFIG,
  BUILTIN_VAE_CONFIG,
  builtinClipTensors,
  builtinLdmTensors,
} from '../builtin/model.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import type { ParamStore } from '../models/params.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder } from '../models/vae.ts';
import { TfGenerationEngine } from '../service/engine.ts';
import {
  controlNetConfigToDiffusers,
  originalToDiffusersTensors,
  unetDiffusersConfig,
  vaeConfigToDiffusers,
  writeDiffusersComponent,
} from '../weights/convert.ts';
import type { Component } from '../weights/keymap.ts';
import { ORIGINAL_PREFIXES } from '../weights/keymap.ts';
import { encodeSafetensors, SafetensorsFile } from '../weights/safetensors.ts';
import { readModelConfig } from './config.ts';
import { createBuiltinRegistry, createRegistryFromConfig, type ModelRegistry } from './registry.ts';

const HF_TOKENIZER = fileURLToPath(new URL('../../test/fixtures/clip/hf-tokenizer/', import.meta.url));

/** Writes one built-in component as a diffusers folder, going through an original-layout file first. */
async function writeComponent(
  dir: string,
  scratch: string,
  builtinName: string,
  component: Component,
  params: ParamStore,
  geometry: Parameters<typeof originalToDiffusersTensors>[3],
  config: Record<string, unknown>,
): Promise<void> {
  const original: Parameters<typeof encodeSafetensors>[0] = {};
  for (const [name, { shape, data }] of builtinLdmTensors(builtinName, params)) {
    original[ORIGINAL_PREFIXES[component] + name] = { dtype: 'F32', shape, data };
  }
  const originalPath = join(scratch, `${builtinName}.safetensors`);
  await writeFile(originalPath, encodeSafetensors(original));
  const file = await SafetensorsFile.open(originalPath);
  try {
    await writeDiffusersComponent(
      dir,
      config,
      await originalToDiffusersTensors(file, component, params, geometry),
    );
  } finally {
    await file.close();
  }
}

/** The built-in model's weights, saved as SD1.5-style diffusers folders plus a model config. */
async function writeBuiltinAsCheckpoints(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'contour-weights-'));
  const scratch = join(root, 'scratch');
  const base = join(root, 'base');
  await mkdir(scratch, { recursive: true });
  await mkdir(join(base, 'text_encoder'), { recursive: true });
  await mkdir(join(base, 'tokenizer'), { recursive: true });
  const clip: Parameters<typeof encodeSafetensors>[0] = {};
  for (const [name, { shape, data }] of builtinClipTensors()) {
    clip[`text_model.${name}`] = { dtype: 'F32', shape, data };
  }
  await writeFile(join(base, 'text_encoder/model.safetensors'), encodeSafetensors(clip));
  await writeFile(join(base, 'text_encoder/config.json'), JSON.stringify(BUILTIN_CLIP_CONFIG));
  for (const name of ['vocab.json', 'merges.txt']) {
    await copyFile(join(HF_TOKENIZER, name), join(base, 'tokenizer', name));
  }
  await writeComponent(
    join(base, 'unet'),
    scratch,
    'unet',
    'unet',
    new UNetModel(BUILTIN_UNET_CONFIG).params,
    BUILTIN_UNET_CONFIG,
    unetDiffusersConfig(BUILTIN_UNET_CONFIG),
  );
  await writeComponent(
    join(base, 'vae'),
    scratch,
    'vae',
    'vae-decoder',
    new VaeDecoder(BUILTIN_VAE_CONFIG).params,
    BUILTIN_VAE_CONFIG,
    vaeConfigToDiffusers(BUILTIN_VAE_CONFIG),
  );
  await writeComponent(
    join(root, 'heads/my_canny_head'),
    scratch,
    'controlnet-canny',
    'controlnet',
    new ControlNetModel(BUILTIN_CONTROLNET_CONFIG).params,
    BUILTIN_CONTROLNET_CONFIG,
    controlNetConfigToDiffusers(BUILTIN_CONTROLNET_CONFIG),
  );
  const configPath = join(root, 'models.json');
  await writeFile(
    configPath,
    JSON.stringify({
      base: { name: 'tiny-from-disk', path: 'base' },
      heads: { canny: 'heads/my_canny_head' },
    }),
  );
  return configPath;
}

let fromDisk: ModelRegistry;
let builtin: ModelRegistry;

beforeAll(async () => {
  await initBackend({ force: 'cpu', log: () => {} });
  fromDisk = await createRegistryFromConfig(await readModelConfig(await writeBuiltinAsCheckpoints()));
  builtin = await createBuiltinRegistry({ model: 'random' });
}, 60_000);
afterAll(() => {
  fromDisk?.dispose();
  builtin?.dispose();
});

describe('createRegistryFromConfig (diffusers folders on disk)', () => {
  it('serves only the configured heads, named after their folders', () => {
    expect(fromDisk.base).toMatchObject({ name: 'tiny-from-disk', builtin: false });
    expect(fromDisk.servedTypes).toEqual(['canny']);
    expect(fromDisk.headName('canny')).toBe('my_canny_head');
    expect(fromDisk.missingHead(['canny', 'depth'])).toBe('depth');
  });

  it('loads CLIP, UNet, VAE and the head so they generate exactly what the same weights do in memory', async () => {
    const size = 64;
    const map = new Float32Array(size * size * 3);
    for (let i = 0; i < map.length; i += 7) map[i] = 1;
    const job = {
      prompt: 'a ring',
      negativePrompt: 'blurry',
      seed: 3,
      numImages: 1,
      controls: [
        { type: 'canny' as const, map: { width: size, height: size, channels: 3 as const, data: map } },
      ].map((c) => ({ ...c, strength: 1, start: 0, end: 1 })),
    };
    const settings = { width: size, height: size, steps: 2, guidanceScale: 7, eta: 0, guessMode: false };
    const [a] = await new TfGenerationEngine(fromDisk).run([job], settings);
    const [b] = await new TfGenerationEngine(builtin).run([job], settings);
    expect(a!.images[0]!.data.length).toBe(size * size * 3);
    let worst = 0;
    for (let i = 0; i < a!.images[0]!.data.length; i++) {
      worst = Math.max(worst, Math.abs(a!.images[0]!.data[i]! - b!.images[0]!.data[i]!));
    }
    expect(worst).toBeLessThanOrEqual(1);
  });
});
