import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ControlTypeSchema, formatIssuePath } from '@contour/shared/contracts';
import { z } from 'zod';
import { RegistryError } from './errors.ts';

/** Where one ControlNet head's weights are: a diffusers ControlNetModel folder or a single safetensors / PyTorch file. */
export const HeadSourceSchema = z.union([
  z
    .string()
    .min(1)
    .transform((path) => ({ path })),
  z.object({ path: z.string().min(1) }).strict(),
]);

/**
 * The model config file (`CONTOUR_MODEL_CONFIG`). Relative paths are resolved against the file's folder.
 *
 * ```json
 * { "base": { "name": "sd15", "path": "/weights/stable-diffusion-v1-5", "layout": "diffusers" },
 *   "heads": { "canny": "/weights/controlnet/control_v11p_sd15_canny" },
 *   "memory_budget_mb": 6000 }
 * ```
 */
export const ModelConfigSchema = z
  .object({
    base: z
      .object({
        name: z.string().min(1).default('stable-diffusion-v1-5'),
        path: z.string().min(1),
        /** `diffusers`: folder with unet/ vae/ text_encoder/ tokenizer/; `single-file`: one original checkpoint. */
        layout: z.enum(['diffusers', 'single-file']).default('diffusers'),
      })
      .strict(),
    heads: z.partialRecord(ControlTypeSchema, HeadSourceSchema).default({}),
    /** Bytes of ControlNet weights kept loaded at once; least recently used heads are evicted beyond it. */
    memory_budget_mb: z.number().positive().default(4096),
  })
  .strict();
/** A parsed model config with absolute paths. */
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** Parses a model config object; relative paths are taken from `baseDir`. */
export function parseModelConfig(raw: unknown, baseDir: string): ModelConfig {
  const parsed = ModelConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RegistryError(
      'model_config_invalid',
      `model config: ${formatIssuePath(issue.path) || '(root)'}: ${issue.message}`,
    );
  }
  const absolute = (path: string) => (isAbsolute(path) ? path : resolve(baseDir, path));
  const config = parsed.data;
  config.base.path = absolute(config.base.path);
  for (const source of Object.values(config.heads)) source.path = absolute(source.path);
  return config;
}

/** Reads and parses the model config file at `path`. */
export async function readModelConfig(path: string): Promise<ModelConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new RegistryError('model_config_invalid', `cannot read model config ${path}: ${String(error)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new RegistryError('model_config_invalid', `model config ${path} is not JSON: ${String(error)}`);
  }
  return parseModelConfig(raw, dirname(resolve(path)));
}
