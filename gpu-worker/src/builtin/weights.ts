import { gaussianNoise, streamOf } from '../pipelines/noise.ts';

/** Seed of every built-in parameter: changing it changes every built-in image. */
export const BUILTIN_WEIGHT_SEED = 20_260_001;

/** What kind of tensor a parameter is, which decides how it is initialised. */
export type ParameterRole = 'weight' | 'bias' | 'norm-scale' | 'norm-shift' | 'embedding';

/**
 * The values of one built-in parameter, in PyTorch layout. This is the single place built-in weights come from:
 * deterministic random values (seeded per component and parameter name, so they never depend on build
 * order). The trained built-in model is loaded from its own files instead (`training/builtin-model.ts`).
 *
 * Weights are scaled by 1/sqrt(fan_in) so activations keep unit scale through the network (outputs are
 * meaningless pictures, but finite and stable for any number of steps).
 */
export function builtinParameter(
  component: string,
  name: string,
  torchShape: readonly number[],
  role: ParameterRole,
): Float32Array {
  const count = torchShape.reduce((a, b) => a * b, 1);
  if (role === 'norm-scale') return new Float32Array(count).fill(1);
  if (role === 'bias' || role === 'norm-shift') return new Float32Array(count);
  const values = gaussianNoise(BUILTIN_WEIGHT_SEED, streamOf(`${component}/${name}`), count);
  const fanIn = torchShape.slice(1).reduce((a, b) => a * b, 1);
  const scale = role === 'embedding' ? 0.5 : 1 / Math.sqrt(Math.max(1, fanIn));
  for (let i = 0; i < values.length; i++) values[i] = values[i]! * scale;
  return values;
}

/**
 * The role of a parameter of the ldm/cldm models, from its name and shape: 1-D `.weight`/`.bias` of a norm
 * (every 1-D weight in those models is a norm scale), 1-D bias, or a matrix / conv kernel.
 */
export function ldmParameterRole(name: string, torchShape: readonly number[]): ParameterRole {
  if (torchShape.length === 1) return name.endsWith('.weight') ? 'norm-scale' : 'bias';
  return 'weight';
}
