import type { ParamStore } from '../../models/params.ts';
import type { KeyMapping } from '../../weights/keymap.ts';
import { loadParams, type WeightFile } from '../../weights/load.ts';
import { openWeightFile } from '../../weights/open.ts';

/** An OpenPose weight file that is missing, unreadable or not the expected checkpoint; names the file. */
export class OpenposeWeightError extends Error {
  override readonly name = 'OpenposeWeightError';
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

/**
 * The checkpoints' own keys: body/hand files hold `conv1_1.weight`... which util.transfer() maps onto the model's
 * `model0.conv1_1.weight` by dropping the block prefix, so the networks declare the file names directly; facenet.pth
 * is FaceNet's plain state dict.
 */
const CHECKPOINT_KEYS: KeyMapping = { fileKeys: (name) => [name], belongs: () => true };

/**
 * Loads `params` from `path` (.pth zip/legacy checkpoint or .safetensors); any failure names `file`. `strict`
 * refuses extra keys: load_state_dict does (facenet.pth), util.transfer() ignores them (body/hand).
 */
export async function loadOpenposeParams(
  params: ParamStore,
  file: string,
  path: string | undefined,
  strict: boolean,
): Promise<void> {
  if (!path) throw new OpenposeWeightError(file, '(no path)', new Error('no path given for this file'));
  let opened: WeightFile;
  try {
    opened = await openWeightFile(path);
  } catch (error) {
    throw new OpenposeWeightError(file, path, error);
  }
  try {
    await loadParams(params, opened, CHECKPOINT_KEYS, { strict });
  } catch (error) {
    params.dispose();
    throw new OpenposeWeightError(file, path, error);
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
