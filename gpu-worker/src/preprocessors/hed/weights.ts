import type { ParamStore } from '../../models/params.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { loadParams, type WeightFile } from '../../weights/load.ts';
import { openWeightFile } from '../../weights/open.ts';

/** An annotator weight file that is missing, unreadable or not the expected checkpoint; names the file. */
export class AnnotatorWeightError extends Error {
  override readonly name = 'AnnotatorWeightError';
  readonly code = 'annotator_weights';
  constructor(
    readonly file: string,
    readonly path: string,
    override readonly cause: unknown,
  ) {
    super(
      `annotator weight file ${file} (${path}): ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

/** Key mapping for a checkpoint whose keys are the parameter names, optionally under `prefix` (e.g. `module.`). */
export function prefixedKeys(prefix = ''): KeyMapping {
  return {
    fileKeys: (name) => (prefix ? [prefix + name, name] : [name]),
    belongs: () => true,
  };
}

/**
 * Loads `params` from the weight file at `path` (a `.pth`/`.pt` checkpoint, plain or under `state_dict`, or
 * `.safetensors`); any failure becomes an {@link AnnotatorWeightError} naming `file`.
 */
export async function loadAnnotatorParams(
  params: ParamStore,
  file: string,
  path: string | undefined,
  mapping: KeyMapping,
): Promise<void> {
  if (!path) throw new AnnotatorWeightError(file, '(no path)', new Error('no path given for this file'));
  let opened: WeightFile;
  try {
    opened = await openWeightFile(path);
  } catch (error) {
    throw new AnnotatorWeightError(file, path, error);
  }
  try {
    await loadParams(params, opened, mapping);
  } catch (error) {
    params.dispose();
    throw new AnnotatorWeightError(file, path, error);
  } finally {
    await opened.close();
  }
}

/** Bytes of float32 weights a ParamStore holds. */
export function paramBytes(params: ParamStore): number {
  let bytes = 0;
  for (const [, value] of params.entries()) bytes += value.size * 4;
  return bytes;
}
