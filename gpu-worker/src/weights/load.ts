import type { ParamStore } from '../models/params.ts';
import type { KeyMapping } from './keymap.ts';

/** A parameter whose stored shape differs from the model's. */
export interface MisshapedKey {
  name: string;
  fileKey: string;
  expected: number[];
  actual: number[];
}

/** Everything that did not line up between a model and a file, by name. */
export interface LoadReport {
  /** Model parameters (original names) with no tensor in the file. */
  missing: string[];
  /** File keys of this component that no model parameter uses. */
  unexpected: string[];
  misshaped: MisshapedKey[];
}

/** Raised when a checkpoint does not match the model; `report` lists every offending key. */
export class WeightLoadError extends Error {
  override readonly name = 'WeightLoadError';
  readonly code = 'weights_mismatch';
  constructor(readonly report: LoadReport) {
    const parts = [
      report.missing.length ? `missing: ${report.missing.join(', ')}` : '',
      report.unexpected.length ? `unexpected: ${report.unexpected.join(', ')}` : '',
      report.misshaped.length
        ? `mis-shaped: ${report.misshaped
            .map((k) => `${k.fileKey} [${k.actual.join(',')}] (expected [${k.expected.join(',')}])`)
            .join(', ')}`
        : '',
    ].filter(Boolean);
    super(`checkpoint does not match the model: ${parts.join('; ')}`);
  }
}

/** The header facts the matcher needs: file keys and their shapes. */
export type KeyShapes = ReadonlyMap<string, { shape: number[] }>;

/** A 1x1 conv kernel [o, i, 1, 1] may be stored as a Linear [o, i] (diffusers VAE attention). */
function shapesCompatible(expected: number[], actual: number[]): boolean {
  if (expected.join(',') === actual.join(',')) return true;
  return (
    expected.length === 4 &&
    expected[2] === 1 &&
    expected[3] === 1 &&
    actual.length === 2 &&
    actual[0] === expected[0] &&
    actual[1] === expected[1]
  );
}

/** Matches declared parameters to file keys without reading data: the file key for each name plus a report. */
export function matchKeys(
  specs: ReadonlyMap<string, number[]>,
  keys: KeyShapes,
  mapping: KeyMapping,
): { fileKeyOf: Map<string, string>; report: LoadReport } {
  const fileKeyOf = new Map<string, string>();
  const report: LoadReport = { missing: [], unexpected: [], misshaped: [] };
  for (const [name, expected] of specs) {
    const candidates = mapping.fileKeys(name);
    const fileKey = candidates.find((key) => keys.has(key));
    if (fileKey === undefined) {
      report.missing.push(name);
      continue;
    }
    fileKeyOf.set(name, fileKey);
    const actual = keys.get(fileKey)!.shape;
    if (!shapesCompatible(expected, actual)) report.misshaped.push({ name, fileKey, expected, actual });
  }
  const used = new Set(fileKeyOf.values());
  for (const key of keys.keys()) if (mapping.belongs(key) && !used.has(key)) report.unexpected.push(key);
  return { fileKeyOf, report };
}

/** What the loader needs of an open weight file (safetensors or a PyTorch checkpoint). */
export interface WeightFile {
  readonly tensors: KeyShapes;
  /** String metadata (safetensors `__metadata__`; empty for PyTorch checkpoints). */
  readonly metadata: Record<string, string>;
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Options for {@link loadParams}. */
export interface LoadOptions {
  /** Treat unexpected keys as an error (default true). */
  strict?: boolean;
}

/**
 * Loads a model's parameters from an open weight file, one tensor at a time, converting PyTorch layout
 * to TensorFlow.js layout. Throws {@link WeightLoadError} (before reading any data) on any mismatch.
 */
export async function loadParams(
  params: ParamStore,
  file: WeightFile,
  mapping: KeyMapping,
  options: LoadOptions = {},
): Promise<LoadReport> {
  const { fileKeyOf, report } = matchKeys(params.specs, file.tensors, mapping);
  const strict = options.strict ?? true;
  if (report.missing.length || report.misshaped.length || (strict && report.unexpected.length)) {
    throw new WeightLoadError(report);
  }
  for (const [name, fileKey] of fileKeyOf) params.setFromTorch(name, await file.readFloat32(fileKey));
  return report;
}
