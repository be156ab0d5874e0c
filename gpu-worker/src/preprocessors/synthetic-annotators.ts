import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeSafetensors, type SafetensorsTensorInput } from '../weights/safetensors.ts';
import { isIntegerDtype, type ManifestEntry, syntheticTensor } from './synthetic-weights.ts';

/**
 * The checkpoint-layout manifest (names, shapes) of each annotator file, by its lllyasviel/Annotators name: the
 * files the parity fixtures were made from (gpu-worker/test/fixtures/preprocessors/<family>/).
 */
export const ANNOTATOR_MANIFESTS: Readonly<Record<string, string>> = {
  'dpt_hybrid-midas-501f0c75.pt': 'midas/dpt_hybrid.manifest.json',
  'midas_v21_small_256.pt': 'midas/midas_v21_small.manifest.json',
  'ControlNetHED.pth': 'hed/manifest.json',
  'table5_pidinet.pth': 'pidinet/manifest.json',
  'scannet.pt': 'normalbae/scannet.manifest.json',
  'mlsd_large_512_fp32.pth': 'mlsd/mlsd_large_512_fp32.manifest.json',
  'sk_model.pth': 'lineart/sk_model.manifest.json',
  'sk_model2.pth': 'lineart/sk_model.manifest.json',
  'netG.pth': 'lineart_anime/netG.manifest.json',
  'upernet_global_small.pth': 'seg/upernet_global_small.manifest.json',
};

const FIXTURES = new URL('../../test/fixtures/preprocessors/', import.meta.url);

/** The manifest of one annotator file (undefined when this build has none for it). */
export async function annotatorManifest(file: string): Promise<ManifestEntry[] | undefined> {
  const relative = ANNOTATOR_MANIFESTS[file];
  if (!relative) return undefined;
  return JSON.parse(await readFile(new URL(relative, FIXTURES), 'utf8')) as ManifestEntry[];
}

/**
 * Writes seeded synthetic full-size weights for annotator files into `dir`, under their real names (as
 * safetensors content: the loaders read files by content), for tests and benchmarks of the whole path without
 * downloads. Returns the files it could not make (no manifest).
 */
export async function writeSyntheticAnnotators(
  dir: string,
  files: readonly string[],
  seed = 1,
): Promise<string[]> {
  const missing: string[] = [];
  for (const file of files) {
    const manifest = await annotatorManifest(file);
    if (!manifest) {
      missing.push(file);
      continue;
    }
    const tensors: Record<string, SafetensorsTensorInput> = {};
    for (const entry of manifest) {
      if (isIntegerDtype(entry.dtype)) continue;
      tensors[entry.name] = { dtype: 'F32', shape: entry.shape, data: syntheticTensor(entry, seed) };
    }
    await writeFile(join(dir, file), encodeSafetensors(tensors));
  }
  return missing;
}
