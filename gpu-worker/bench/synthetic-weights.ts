/**
 * Writes full-size Stable Diffusion 1.5 + ControlNet checkpoints with synthetic weights, in the exact key layouts
 * users download, to a folder outside git (they are GBs):
 *
 *   sd15-single/v1-5-pruned-emaonly.safetensors   original single file: UNet, VAE, CLIP, DDPM buffers (F32, > 4 GB)
 *   sd15-diffusers/                               diffusers folder, F32 (unet/, vae/, text_encoder/, tokenizer/, ...)
 *   sd15-diffusers-fp16/                          the same with the `fp16` variant files
 *   control_sd15_canny.safetensors                ControlNet 1.0: the full ControlLDM (F32)
 *   control_v11p_sd15_canny/                      ControlNet 1.1 diffusers folder (fp16 variant)
 *   control_v11p_sd15_canny.pth                   ControlNet 1.1 `.pth`, written by PyTorch (when python3-torch exists)
 *
 * Weights are seeded per tensor name (the same values in every layout, F16-rounded where stored F16) and scaled
 * by 1/sqrt(fan_in), norms near 1, so activations stay finite through the full-depth networks.
 *
 *   npx tsx gpu-worker/bench/synthetic-weights.ts --out /tmp/contour-sd15 [--only sd15-single,control_v11p_sd15_canny]
 */
import { execFileSync } from 'node:child_process';
import { mkdir, open as openFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SD15_CONTROLNET_CONFIG, SD15_UNET_CONFIG, SD15_VAE_CONFIG } from '../src/models/config.ts';
import { SD15_CLIP_TEXT_CONFIG } from '../src/text/model.ts';
import { ClipTokenizer } from '../src/text/tokenizer.ts';
import {
  controlNetConfigToDiffusers,
  unetDiffusersConfig,
  vaeConfigToDiffusers,
} from '../src/weights/convert.ts';
import { diffusersLayout } from '../src/weights/keymap.ts';
import { float32ToFloat16Bits } from '../src/weights/safetensors.ts';

type Dtype = 'F32' | 'F16' | 'I64';
export interface TensorSpec {
  /** Key in the file being written. */
  key: string;
  /** Key the values are seeded from (the original-layout name), so every layout holds the same weights. */
  seedKey: string;
  shape: number[];
  dtype: Dtype;
}

export const MANIFEST = new URL('../test/fixtures/sd15_controlldm_manifest.json', import.meta.url);
const DDPM_BUFFERS = [
  'betas',
  'alphas_cumprod',
  'alphas_cumprod_prev',
  'sqrt_alphas_cumprod',
  'sqrt_one_minus_alphas_cumprod',
  'log_one_minus_alphas_cumprod',
  'sqrt_recip_alphas_cumprod',
  'sqrt_recipm1_alphas_cumprod',
  'posterior_variance',
  'posterior_log_variance_clipped',
  'posterior_mean_coef1',
  'posterior_mean_coef2',
];
const CLIP_PREFIX = 'cond_stage_model.transformer.text_model.';

/** The CLIP ViT-L/14 text model's keys (Hugging Face names, without prefix) and shapes. */
function clipKeys(): [string, number[]][] {
  const {
    vocab_size: vocab,
    hidden_size: d,
    intermediate_size: ff,
    num_hidden_layers: layers,
  } = SD15_CLIP_TEXT_CONFIG;
  const out: [string, number[]][] = [
    ['embeddings.token_embedding.weight', [vocab, d]],
    ['embeddings.position_embedding.weight', [SD15_CLIP_TEXT_CONFIG.max_position_embeddings, d]],
  ];
  for (let i = 0; i < layers; i++) {
    const p = `encoder.layers.${i}.`;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) {
      out.push([`${p}self_attn.${proj}.weight`, [d, d]], [`${p}self_attn.${proj}.bias`, [d]]);
    }
    for (const norm of ['layer_norm1', 'layer_norm2'])
      out.push([`${p}${norm}.weight`, [d]], [`${p}${norm}.bias`, [d]]);
    out.push([`${p}mlp.fc1.weight`, [ff, d]], [`${p}mlp.fc1.bias`, [ff]]);
    out.push([`${p}mlp.fc2.weight`, [d, ff]], [`${p}mlp.fc2.bias`, [d]]);
  }
  out.push(['final_layer_norm.weight', [d]], ['final_layer_norm.bias', [d]]);
  return out;
}

/** FNV-1a of a name: the seed of its tensor. */
function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

/** Seeded values of one tensor: N(0, 1/fan_in)-scaled uniforms for kernels, ~1 for norm weights, small biases. */
function valuesOf(seedKey: string, shape: number[]): Float32Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  let state = seedOf(seedKey);
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296 - 0.5; // uniform in [-0.5, 0.5): std 1/sqrt(12)
  };
  const isEmbedding = /embedding\.weight$/.test(seedKey);
  if (shape.length === 1) {
    const isNormWeight = seedKey.endsWith('.weight');
    for (let i = 0; i < count; i++) out[i] = (isNormWeight ? 1 : 0) + 0.02 * next();
    return out;
  }
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const scale = isEmbedding ? 0.02 * Math.sqrt(12) : Math.sqrt(12 / fanIn);
  for (let i = 0; i < count; i++) out[i] = scale * next();
  return out;
}

/** Writes a safetensors file tensor by tensor (never the whole file in memory: the single files exceed 4 GB). */
async function writeSafetensors(path: string, specs: TensorSpec[], metadata: Record<string, string> = {}) {
  const width: Record<Dtype, number> = { F32: 4, F16: 2, I64: 8 };
  const header: Record<string, unknown> = { __metadata__: { format: 'pt', ...metadata } };
  let offset = 0;
  for (const spec of specs) {
    const bytes = spec.shape.reduce((a, b) => a * b, 1) * width[spec.dtype];
    header[spec.key] = { dtype: spec.dtype, shape: spec.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const handle = await openFile(path, 'w');
  try {
    await handle.write(prefix);
    await handle.write(json);
    for (const spec of specs) {
      let data: Uint8Array;
      if (spec.dtype === 'I64') {
        // position_ids: 0..n-1, as the original checkpoints hold them.
        const n = spec.shape.reduce((a, b) => a * b, 1);
        data = new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)).buffer);
      } else {
        const values = valuesOf(spec.seedKey, spec.shape);
        if (spec.dtype === 'F32') data = new Uint8Array(values.buffer);
        else data = new Uint8Array(Uint16Array.from(values, float32ToFloat16Bits).buffer);
      }
      await handle.write(data);
    }
  } finally {
    await handle.close();
  }
  return offset;
}

export type Manifest = Record<string, number[]>;

/** Original single-file specs of the given prefixes (plus CLIP and the DDPM buffers when `withClip`). */
export function originalSpecs(
  manifest: Manifest,
  prefixes: string[],
  withClip: boolean,
  dtype: 'F32' | 'F16',
): TensorSpec[] {
  const specs: TensorSpec[] = [];
  for (const [key, shape] of Object.entries(manifest)) {
    if (prefixes.some((p) => key.startsWith(p))) specs.push({ key, seedKey: key, shape, dtype });
  }
  if (withClip) {
    for (const [name, shape] of clipKeys()) {
      specs.push({ key: CLIP_PREFIX + name, seedKey: CLIP_PREFIX + name, shape, dtype });
    }
    specs.push({ key: `${CLIP_PREFIX}embeddings.position_ids`, seedKey: '', shape: [1, 77], dtype: 'I64' });
    for (const name of DDPM_BUFFERS) specs.push({ key: name, seedKey: name, shape: [1000], dtype: 'F32' });
  }
  return specs;
}

/** One component's specs renamed to its diffusers file keys (VAE attention 1x1 convs stored as Linear). */
export function diffusersSpecs(
  manifest: Manifest,
  prefix: string,
  component: 'unet' | 'controlnet' | 'vae',
  dtype: 'F32' | 'F16',
): TensorSpec[] {
  const specs: TensorSpec[] = [];
  for (const [key, shape] of Object.entries(manifest)) {
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    let fileKey: string;
    let fileShape = shape;
    if (component === 'vae') {
      const side =
        name.startsWith('encoder.') || name.startsWith('quant_conv.') ? 'vae-encoder' : 'vae-decoder';
      fileKey = diffusersLayout(side, SD15_VAE_CONFIG).fileKeys(name)[0]!;
      if (/\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(name)) fileShape = shape.slice(0, 2);
    } else {
      const config = component === 'unet' ? SD15_UNET_CONFIG : SD15_CONTROLNET_CONFIG;
      fileKey = diffusersLayout(component, config).fileKeys(name)[0]!;
    }
    specs.push({ key: fileKey, seedKey: key, shape: fileShape, dtype });
  }
  return specs;
}

async function writeDiffusersBase(manifest: Manifest, dir: string, variant: 'fp32' | 'fp16') {
  const dtype: 'F16' | 'F32' = variant === 'fp16' ? 'F16' : 'F32';
  const suffix = variant === 'fp16' ? '.fp16' : '';
  const component = async (
    sub: string,
    config: Record<string, unknown>,
    specs: TensorSpec[],
    file: string,
  ) => {
    await mkdir(join(dir, sub), { recursive: true });
    await writeFile(join(dir, sub, 'config.json'), JSON.stringify(config, null, 2));
    await writeSafetensors(join(dir, sub, file), specs);
  };
  await component(
    'unet',
    unetDiffusersConfig(SD15_UNET_CONFIG),
    diffusersSpecs(manifest, 'model.diffusion_model.', 'unet', dtype),
    `diffusion_pytorch_model${suffix}.safetensors`,
  );
  await component(
    'vae',
    vaeConfigToDiffusers(SD15_VAE_CONFIG),
    diffusersSpecs(manifest, 'first_stage_model.', 'vae', dtype),
    `diffusion_pytorch_model${suffix}.safetensors`,
  );
  const clip = SD15_CLIP_TEXT_CONFIG;
  await component(
    'text_encoder',
    {
      architectures: ['CLIPTextModel'],
      ...clip,
      projection_dim: 768,
      torch_dtype: variant === 'fp16' ? 'float16' : 'float32',
    },
    [
      ...clipKeys().map(
        ([name, shape]): TensorSpec => ({
          key: `text_model.${name}`,
          seedKey: CLIP_PREFIX + name,
          shape,
          dtype,
        }),
      ),
      { key: 'text_model.embeddings.position_ids', seedKey: '', shape: [1, 77], dtype: 'I64' as const },
    ],
    `model${suffix}.safetensors`,
  );
  const tokenizer = await ClipTokenizer.fromOpenAIVocab();
  const files = tokenizer.toHuggingFaceFiles();
  await mkdir(join(dir, 'tokenizer'), { recursive: true });
  await writeFile(join(dir, 'tokenizer', 'vocab.json'), JSON.stringify(files.vocab));
  await writeFile(join(dir, 'tokenizer', 'merges.txt'), files.merges);
  await writeFile(
    join(dir, 'tokenizer', 'tokenizer_config.json'),
    JSON.stringify({ model_max_length: 77, do_lower_case: true, pad_token: '<|endoftext|>' }),
  );
  await mkdir(join(dir, 'scheduler'), { recursive: true });
  await writeFile(
    join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify({
      _class_name: 'PNDMScheduler',
      beta_start: 0.00085,
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      num_train_timesteps: 1000,
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
    }),
  );
  await writeFile(
    join(dir, 'model_index.json'),
    JSON.stringify({
      _class_name: 'StableDiffusionPipeline',
      text_encoder: ['transformers', 'CLIPTextModel'],
      tokenizer: ['transformers', 'CLIPTokenizer'],
      unet: ['diffusers', 'UNet2DConditionModel'],
      vae: ['diffusers', 'AutoencoderKL'],
      scheduler: ['diffusers', 'PNDMScheduler'],
    }),
  );
}

/** Re-saves a `control_model.*` safetensors file as a `.pth` with PyTorch itself (python3-torch), if present. */
function writePthWithTorch(from: string, to: string): boolean {
  const script = [
    'import json, struct, sys, collections, torch',
    'raw = open(sys.argv[1], "rb").read()',
    'n = struct.unpack("<Q", raw[:8])[0]',
    'header = json.loads(raw[8:8 + n]); data = raw[8 + n:]',
    'out = collections.OrderedDict()',
    'for k, v in header.items():',
    '    if k == "__metadata__": continue',
    '    b, e = v["data_offsets"]',
    '    out[k] = torch.frombuffer(bytearray(data[b:e]), dtype=torch.float16).reshape(v["shape"])',
    'torch.save(out, sys.argv[2])',
  ].join('\n');
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(python, ['-c', script, from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
      return true;
    } catch {}
  }
  return false;
}

/** Every layout this script writes, by name. */
export const LAYOUTS = [
  'sd15-single',
  'sd15-diffusers',
  'sd15-diffusers-fp16',
  'control_sd15_canny',
  'control_v11p_sd15_canny',
  'control_v11p_sd15_canny.pth',
] as const;

/** Writes the requested layouts under `out`; returns what was written (or skipped, with why). */
export async function writeSyntheticWeights(
  out: string,
  only: readonly string[] = LAYOUTS,
  log: (line: string) => void = console.log,
): Promise<Record<string, string>> {
  const manifest = JSON.parse(await readFile(MANIFEST, 'utf8')) as Manifest;
  const written: Record<string, string> = {};
  await mkdir(out, { recursive: true });
  const step = async (name: string, run: () => Promise<string>) => {
    if (!only.includes(name)) return;
    const started = performance.now();
    written[name] = await run();
    log(`${name}: ${written[name]} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  };
  await step('sd15-single', async () => {
    await mkdir(join(out, 'sd15-single'), { recursive: true });
    const path = join(out, 'sd15-single', 'v1-5-pruned-emaonly.safetensors');
    const specs = originalSpecs(manifest, ['model.diffusion_model.', 'first_stage_model.'], true, 'F32');
    await writeSafetensors(path, specs);
    return path;
  });
  await step('sd15-diffusers', async () => {
    await writeDiffusersBase(manifest, join(out, 'sd15-diffusers'), 'fp32');
    return join(out, 'sd15-diffusers');
  });
  await step('sd15-diffusers-fp16', async () => {
    await writeDiffusersBase(manifest, join(out, 'sd15-diffusers-fp16'), 'fp16');
    return join(out, 'sd15-diffusers-fp16');
  });
  await step('control_sd15_canny', async () => {
    const path = join(out, 'control_sd15_canny.safetensors');
    const prefixes = ['control_model.', 'model.diffusion_model.', 'first_stage_model.'];
    await writeSafetensors(path, originalSpecs(manifest, prefixes, true, 'F32'));
    return path;
  });
  await step('control_v11p_sd15_canny', async () => {
    const dir = join(out, 'control_v11p_sd15_canny');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify(controlNetConfigToDiffusers(SD15_CONTROLNET_CONFIG), null, 2),
    );
    await writeSafetensors(
      join(dir, 'diffusion_pytorch_model.fp16.safetensors'),
      diffusersSpecs(manifest, 'control_model.', 'controlnet', 'F16'),
    );
    return dir;
  });
  await step('control_v11p_sd15_canny.pth', async () => {
    const tmp = join(out, 'control_v11p_sd15_canny.pth.safetensors');
    await writeSafetensors(tmp, originalSpecs(manifest, ['control_model.'], false, 'F16'));
    const path = join(out, 'control_v11p_sd15_canny.pth');
    const ok = writePthWithTorch(tmp, path);
    await rm(tmp, { force: true });
    return ok ? path : 'skipped: python3 with torch is not installed (apt-get install python3-torch)';
  });
  return written;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string' }, only: { type: 'string' } } });
  if (!values.out) {
    console.error('usage: synthetic-weights.ts --out DIR [--only a,b] (layouts: ' + LAYOUTS.join(', ') + ')');
    process.exit(2);
  }
  await writeSyntheticWeights(values.out, values.only ? values.only.split(',') : LAYOUTS);
}
