import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ControlNetConfig,
  controlNetConfigFromDiffusers,
  SD15_CONTROLNET_CONFIG,
  SD15_UNET_CONFIG,
  SD15_VAE_CONFIG,
  type UNetConfig,
  unetConfigFromDiffusers,
  type VaeConfig,
  vaeConfigFromDiffusers,
} from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import type { ParamStore } from '../models/params.ts';
import { UNetModel } from '../models/unet.ts';
import { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import {
  type Component,
  diffusersLayout,
  type KeyMapping,
  ORIGINAL_PREFIXES,
  originalLayout,
} from './keymap.ts';
import { loadParams, type WeightFile } from './load.ts';
import { openWeightFile } from './open.ts';
import { SafetensorsFile } from './safetensors.ts';

/** Raised when a path is neither a known single-file checkpoint nor a diffusers component folder. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(
    readonly code: 'checkpoint_not_found' | 'checkpoint_layout_unknown',
    message: string,
  ) {
    super(message);
  }
}

/** Candidate weight file names of a diffusers component folder, preferred first. */
const DIFFUSERS_WEIGHT_FILES = [
  'diffusion_pytorch_model.safetensors',
  'diffusion_pytorch_model.fp16.safetensors',
];

/** The original-layout mapping for a single file: with the usual prefix, or bare keys (extracted ControlNets). */
export function detectOriginalLayout(keys: Iterable<string>, component: Component): KeyMapping {
  const prefix = ORIGINAL_PREFIXES[component];
  const probe =
    component === 'controlnet' ? 'input_hint_block.0.weight' : component === 'unet' ? 'out.2.weight' : '';
  for (const key of keys) {
    if (key.startsWith(prefix)) return originalLayout(component);
    if (probe && key === probe) return originalLayout(component, '');
  }
  throw new CheckpointError(
    'checkpoint_layout_unknown',
    `no ${component} weights found (expected keys under "${prefix}"${probe ? ` or "${probe}"` : ''})`,
  );
}

/** Opens the weights of a diffusers component folder and parses its config.json. */
async function openDiffusers(
  dir: string,
): Promise<{ file: SafetensorsFile; config: Record<string, unknown> }> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  for (const name of DIFFUSERS_WEIGHT_FILES) {
    const path = join(dir, name);
    if (
      await stat(path).then(
        (s) => s.isFile(),
        () => false,
      )
    ) {
      return { file: await SafetensorsFile.open(path), config };
    }
  }
  throw new CheckpointError('checkpoint_not_found', `${dir} has no ${DIFFUSERS_WEIGHT_FILES.join(' or ')}`);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    throw new CheckpointError('checkpoint_not_found', `no such file or folder: ${path}`);
  }
}

interface Buildable<Config, Model> {
  component: Component;
  build: (config: Config) => Model & { params: ParamStore; dispose(): void };
  fromDiffusers: (config: Record<string, unknown>) => Config;
  geometry: (config: Config) => Parameters<typeof diffusersLayout>[1];
}

async function loadComponent<Config, Model>(
  spec: Buildable<Config, Model>,
  path: string,
  originalConfig: Config,
): Promise<Model> {
  let file: WeightFile;
  let config: Config;
  let mapping: KeyMapping;
  if (await isDirectory(path)) {
    const opened = await openDiffusers(path);
    file = opened.file;
    config = spec.fromDiffusers(opened.config);
    mapping = diffusersLayout(spec.component, spec.geometry(config));
  } else {
    file = await openWeightFile(path);
    config = originalConfig;
    try {
      mapping = detectOriginalLayout(file.tensors.keys(), spec.component);
    } catch (error) {
      await file.close();
      throw error;
    }
  }
  const model = spec.build(config);
  try {
    await loadParams(model.params, file, mapping);
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await file.close();
  }
}

/**
 * Loads a ControlNet from an original-layout safetensors file (`control_model.*` or bare keys; config given,
 * default SD1.5) or from a diffusers ControlNetModel folder (config.json + diffusion_pytorch_model[.fp16]).
 */
export function loadControlNet(
  path: string,
  config: ControlNetConfig = SD15_CONTROLNET_CONFIG,
): Promise<ControlNetModel> {
  return loadComponent(
    {
      component: 'controlnet',
      build: (c: ControlNetConfig) => new ControlNetModel(c),
      fromDiffusers: controlNetConfigFromDiffusers,
      geometry: (c) => c,
    },
    path,
    config,
  );
}

/** Loads the SD UNet from an original single file (`model.diffusion_model.*`) or a diffusers `unet/` folder. */
export function loadUNet(path: string, config: UNetConfig = SD15_UNET_CONFIG): Promise<UNetModel> {
  return loadComponent(
    {
      component: 'unet',
      build: (c: UNetConfig) => new UNetModel(c),
      fromDiffusers: unetConfigFromDiffusers,
      geometry: (c) => c,
    },
    path,
    config,
  );
}

/** Loads the VAE decoder from an original single file (`first_stage_model.*`) or a diffusers `vae/` folder. */
export function loadVaeDecoder(path: string, config: VaeConfig = SD15_VAE_CONFIG): Promise<VaeDecoder> {
  return loadComponent(
    {
      component: 'vae-decoder',
      build: (c: VaeConfig) => new VaeDecoder(c),
      fromDiffusers: vaeConfigFromDiffusers,
      geometry: (c) => c,
    },
    path,
    config,
  );
}

/** Loads the VAE encoder from an original single file (`first_stage_model.*`) or a diffusers `vae/` folder. */
export function loadVaeEncoder(path: string, config: VaeConfig = SD15_VAE_CONFIG): Promise<VaeEncoder> {
  return loadComponent(
    {
      component: 'vae-encoder',
      build: (c: VaeConfig) => new VaeEncoder(c),
      fromDiffusers: vaeConfigFromDiffusers,
      geometry: (c) => c,
    },
    path,
    config,
  );
}
