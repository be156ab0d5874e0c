import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  'body_pose_model.pth': 'openpose/body.manifest.json',
  'hand_pose_model.pth': 'openpose/hand.manifest.json',
  'facenet.pth': 'openpose/face.manifest.json',
};

const FIXTURES = new URL('../../test/fixtures/preprocessors/', import.meta.url);

/** The manifest of one annotator file (undefined when this build has none for it). */
export async function annotatorManifest(file: string): Promise<ManifestEntry[] | undefined> {
  const relative = ANNOTATOR_MANIFESTS[file];
  if (!relative) return undefined;
  return JSON.parse(await readFile(new URL(relative, FIXTURES), 'utf8')) as ManifestEntry[];
}

/**
 * Writes a checkpoint manifest's seeded synthetic weights as a safetensors file, one tensor at a time (the bytes
 * encodeSafetensors makes, without holding a ~500 MB checkpoint twice in memory). `overrides` replace single
 * tensors (fixtures that rescale a layer store its values); integer buffers become I32 zeros. Returns the bytes
 * written.
 */
export function writeSyntheticCheckpoint(
  manifest: readonly ManifestEntry[],
  seed: number,
  path: string,
  overrides: ReadonlyMap<string, Float32Array> = new Map(),
): number {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const entry of manifest) {
    const bytes = entry.shape.reduce((a, b) => a * b, 1) * 4;
    const dtype = isIntegerDtype(entry.dtype) ? 'I32' : 'F32';
    header[entry.name] = { dtype, shape: entry.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(header);
  // Header padded with spaces to a multiple of 8 so tensor data stays aligned, as the reference writer does.
  const json = Buffer.alloc(Math.ceil(Buffer.byteLength(text) / 8) * 8, 0x20);
  json.write(text);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.byteLength));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, length);
    writeSync(fd, json);
    for (const entry of manifest) {
      const data = isIntegerDtype(entry.dtype)
        ? new Int32Array(entry.shape.reduce((a, b) => a * b, 1))
        : (overrides.get(entry.name) ?? syntheticTensor(entry, seed));
      writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  } finally {
    closeSync(fd);
  }
  return 8 + json.byteLength + offset;
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
    if (manifest) writeSyntheticCheckpoint(manifest, seed, join(dir, file));
    else missing.push(file);
  }
  return missing;
}
