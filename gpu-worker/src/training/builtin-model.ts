import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlNetConfigFor } from '../models/config.ts';
import { ControlNetModel } from '../models/controlnet.ts';
import type { UNetModel } from '../models/unet.ts';
import type { VaeDecoder } from '../models/vae.ts';
import type { ClipTextConfig, ClipTextModel } from '../text/model.ts';
import { loadControlNet, loadUNet, loadVaeDecoder } from '../weights/checkpoint.ts';
import { initControlNetFromUNet } from './controlnet-init.ts';
import { createFrozenClip } from './text-encoder.ts';

/** Folder of the committed trained built-in model (`model.json`, `unet/`, `vae/`, `controlnet-canny/`). */
export const TRAINED_BUILTIN_DIR = fileURLToPath(new URL('../../assets/builtin/', import.meta.url));

/** A request of the kind a built-in model was made for: the playground offers it. */
export interface SuggestedRequest {
  prompt: string;
  steps: number;
  guidanceScale: number;
}

/** `model.json` of the trained built-in model: what the folders cannot say themselves. */
export interface TrainedBuiltinManifest {
  name: string;
  imageSize: number;
  /** The frozen text encoder: seeded, so it has no weight file. */
  textEncoder: { config: ClipTextConfig; seed: number };
  /** Control types with a trained head, and their folders. */
  heads: Record<string, string>;
  /** What it draws, for people (the worker's and the edge's /v1/models, the playground). */
  description: string;
  /** Suggested request: a prompt of the kind it was trained on and its sampling settings. */
  defaults: SuggestedRequest;
}

/** The built-in model's description in `model.json`. */
export const BUILTIN_DESCRIPTION =
  'Built-in demo model trained in this repository (docs/TRAINING.md): a filled circle of a named colour on a ' +
  'background of another (red, green, blue, yellow, cyan, magenta, white, black), where a canny map puts its ' +
  'outline. Sampled at 64x64 and resized to the requested size.';

/** The trained built-in model, loaded. */
export interface TrainedBuiltinModel {
  manifest: TrainedBuiltinManifest;
  clip: ClipTextModel;
  unet: UNetModel;
  vae: VaeDecoder;
  /** Loads the trained head of a control type, or undefined when there is none (e.g. only canny is trained). */
  loadHead(type: string): Promise<ControlNetModel | undefined>;
  /**
   * A head of the right shape for a control type without training: the trainable copy of the base encoder with
   * zero convolutions, so it leaves the base's output unchanged (the control is ignored, visibly not faked).
   */
  untrainedHead(): ControlNetModel;
}

/**
 * Loads the trained built-in model (base UNet, tiny-latent decoder, frozen text encoder) from `dir` (default: the
 * committed assets). The worker's tokenizer (real CLIP BPE) drives the text encoder; sampling is the worker's
 * ControlNetPipeline at 64x64.
 */
export async function loadTrainedBuiltinModel(
  dir: string = TRAINED_BUILTIN_DIR,
): Promise<TrainedBuiltinModel> {
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as TrainedBuiltinManifest;
  const [unet, vae] = await Promise.all([loadUNet(join(dir, 'unet')), loadVaeDecoder(join(dir, 'vae'))]);
  const clip = createFrozenClip(manifest.textEncoder.config, manifest.textEncoder.seed);
  return {
    manifest,
    clip,
    unet,
    vae,
    loadHead: async (type) => {
      const folder = manifest.heads[type];
      return folder === undefined ? undefined : loadControlNet(join(dir, folder));
    },
    untrainedHead: () => {
      const net = new ControlNetModel(controlNetConfigFor(unet.config));
      initControlNetFromUNet(net, unet, { seed: 1 });
      return net;
    },
  };
}
