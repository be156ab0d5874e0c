import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CONTROL_TYPES, type ControlType } from '@contour/shared/contracts';
import {
  BUILTIN_BASE_NAME,
  createBuiltinClip,
  createBuiltinControlNet,
  createBuiltinUNet,
  createBuiltinVaeDecoder,
  createBuiltinVaeEncoder,
} from '../builtin/model.ts';
import type { ControlNetModel } from '../models/controlnet.ts';
import type { ParamStore } from '../models/params.ts';
import type { UNetModel } from '../models/unet.ts';
import type { VaeDecoder, VaeEncoder } from '../models/vae.ts';
import { type ClipTextConfig, type ClipTextModel, loadClipTextModel } from '../text/model.ts';
import { ClipTokenizer } from '../text/tokenizer.ts';
import { loadTrainedBuiltinModel, type SuggestedRequest } from '../training/builtin-model.ts';
import { loadControlNet, loadUNet, loadVaeDecoder, loadVaeEncoder } from '../weights/checkpoint.ts';
import type { ModelConfig } from './config.ts';
import { RegistryError } from './errors.ts';

/** The base model every head shares: text encoder, UNet and VAE decoder, loaded once and never evicted. */
export interface BaseModel {
  /** Name reported in /v1/models and in results. */
  name: string;
  /** True for the deterministic built-in model (no real weights). */
  builtin: boolean;
  tokenizer: ClipTokenizer;
  clip: ClipTextModel;
  unet: UNetModel;
  vae: VaeDecoder;
  /** The VAE encoder for img2img / inpaint (absent: the worker refuses those jobs). */
  vaeEncoder?: VaeEncoder;
  /**
   * The one image resolution the base was trained at, when it cannot sample others (the built-in model: 64).
   * Jobs are then sampled at it (shorter side) and resized to the requested size.
   */
  nativeResolution?: number;
  /** What the model draws, for people (built-in model). */
  description?: string;
  /** A request it was made for (built-in model): the playground offers it. */
  suggested?: SuggestedRequest;
}

/** Loads the ControlNet head of one control type. */
export type HeadLoader = (type: ControlType) => Promise<ControlNetModel>;

/** Heads held by one job: they are not evicted until {@link HeadLease.release}. */
export interface HeadLease {
  heads: ReadonlyMap<ControlType, ControlNetModel>;
  release(): void;
}

/** Counters of the head cache. */
export interface RegistryStats {
  loadedHeads: ControlType[];
  headBytes: number;
  budgetBytes: number;
  loads: number;
  evictions: number;
}

interface LoadedHead {
  net: ControlNetModel;
  bytes: number;
  pins: number;
}

/** Bytes of float32 weights a model declares (what it holds once loaded). */
export function paramBytes(params: ParamStore): number {
  let total = 0;
  for (const shape of params.specs.values()) total += shape.reduce((a, b) => a * b, 1) * 4;
  return total;
}

/** Options of the {@link ModelRegistry} constructor. */
export interface ModelRegistryOptions {
  base: BaseModel;
  /** Control types this worker serves (a head is configured for each). */
  servedTypes: readonly ControlType[];
  loadHead: HeadLoader;
  /**
   * Bytes of head weights to keep loaded, counting every copy the engine holds (see bindEngine); least recently
   * used unpinned heads are evicted beyond it.
   */
  budgetBytes: number;
  /** Name of the head of a control type, as results report it. */
  headName: (type: ControlType) => string;
}

/**
 * One locked base model shared by every ControlNet head, and the heads: loaded on first use, kept in
 * least-recently-used order, evicted when their weights exceed the memory budget (never while a job holds them).
 */
export class ModelRegistry {
  readonly base: BaseModel;
  readonly servedTypes: readonly ControlType[];
  readonly budgetBytes: number;
  private readonly loadHead: HeadLoader;
  private readonly nameOf: (type: ControlType) => string;
  /** Loaded heads, least recently used first (Map keeps insertion order; use re-inserts). */
  private readonly loaded = new Map<ControlType, LoadedHead>();
  private readonly loading = new Map<ControlType, Promise<LoadedHead>>();
  private loads = 0;
  private evictions = 0;
  /** See {@link bindEngine}. */
  private engine: { weightCopies: number; releaseModel(model: object): Promise<void> } = {
    weightCopies: 1,
    releaseModel: async () => {},
  };

  constructor(options: ModelRegistryOptions) {
    this.base = options.base;
    this.servedTypes = [...options.servedTypes];
    this.loadHead = options.loadHead;
    this.budgetBytes = options.budgetBytes;
    this.nameOf = options.headName;
  }

  /**
   * Counts heads at what the engine running them really holds (ONNX Runtime keeps a second copy of the weights
   * in its sessions) and lets it free an evicted head's copies.
   */
  bindEngine(engine: { weightCopies: number; releaseModel(model: object): Promise<void> }): void {
    this.engine = engine;
    this.evict();
  }

  /** Name of the head serving `type` (its checkpoint folder or file name). */
  headName(type: ControlType): string {
    return this.nameOf(type);
  }

  /** The first of `types` this worker has no head for, or undefined when all are served. */
  missingHead(types: readonly ControlType[]): ControlType | undefined {
    return types.find((type) => !this.servedTypes.includes(type));
  }

  /** Loads (if needed) and pins the heads of `types`; throws `model_not_available` naming a missing head. */
  async acquire(types: readonly ControlType[]): Promise<HeadLease> {
    const missing = this.missingHead(types);
    if (missing) {
      throw new RegistryError(
        'model_not_available',
        `no ControlNet head is configured for control type "${missing}" (served: ${this.servedTypes.join(', ') || 'none'})`,
        missing,
      );
    }
    const unique = [...new Set(types)];
    const pinned: LoadedHead[] = [];
    const heads = new Map<ControlType, ControlNetModel>();
    try {
      for (const type of unique) {
        const head = await this.ensureLoaded(type);
        head.pins++;
        pinned.push(head);
        heads.set(type, head.net);
        this.touch(type, head);
      }
    } catch (error) {
      for (const head of pinned) head.pins--;
      throw error;
    }
    this.evict();
    let released = false;
    return {
      heads,
      release: () => {
        if (released) return;
        released = true;
        for (const head of pinned) head.pins--;
        this.evict();
      },
    };
  }

  /** What /metrics and /v1/models report about the head cache. */
  get stats(): RegistryStats {
    let headBytes = 0;
    for (const head of this.loaded.values()) headBytes += head.bytes;
    return {
      loadedHeads: [...this.loaded.keys()],
      headBytes: headBytes * this.engine.weightCopies,
      budgetBytes: this.budgetBytes,
      loads: this.loads,
      evictions: this.evictions,
    };
  }

  /** Frees every model. */
  dispose(): void {
    for (const head of this.loaded.values()) head.net.dispose();
    this.loaded.clear();
    this.base.clip.dispose();
    this.base.unet.dispose();
    this.base.vae.dispose();
    this.base.vaeEncoder?.dispose();
  }

  private async ensureLoaded(type: ControlType): Promise<LoadedHead> {
    const present = this.loaded.get(type);
    if (present) return present;
    let pending = this.loading.get(type);
    if (!pending) {
      pending = this.loadHead(type).then(
        (net) => {
          const head = { net, bytes: paramBytes(net.params), pins: 0 };
          this.loaded.set(type, head);
          this.loads++;
          return head;
        },
        (error: unknown) => {
          throw new RegistryError(
            'model_load_failed',
            `loading the "${type}" head failed: ${error instanceof Error ? error.message : String(error)}`,
            type,
          );
        },
      );
      this.loading.set(type, pending);
      pending.finally(() => this.loading.delete(type)).catch(() => {});
    }
    return pending;
  }

  private touch(type: ControlType, head: LoadedHead): void {
    this.loaded.delete(type);
    this.loaded.set(type, head);
  }

  /** Drops least recently used unpinned heads until the loaded ones fit the budget. */
  private evict(): void {
    const copies = this.engine.weightCopies;
    let total = 0;
    for (const head of this.loaded.values()) total += head.bytes * copies;
    for (const [type, head] of this.loaded) {
      if (total <= this.budgetBytes) break;
      if (head.pins > 0) continue;
      void this.engine.releaseModel(head.net).catch(() => {});
      head.net.dispose();
      this.loaded.delete(type);
      total -= head.bytes * copies;
      this.evictions++;
    }
  }
}

/** Default head budget of the built-in model: a few of its (small) heads at once. */
export const BUILTIN_HEAD_BUDGET_BYTES = 64 * 1024 * 1024;

/** The built-in models: the trained circles model (the default) or SD1.5's layout at seeded random weights. */
export const BUILTIN_MODELS = ['circles', 'random'] as const;
/** One of {@link BUILTIN_MODELS}. */
export type BuiltinModelName = (typeof BUILTIN_MODELS)[number];

/** The built-in model a setting names, or undefined when it names none (callers report it their own way). */
export function builtinModelNamed(name: string): BuiltinModelName | undefined {
  return (BUILTIN_MODELS as readonly string[]).includes(name) ? (name as BuiltinModelName) : undefined;
}

/** Options of {@link createBuiltinRegistry}. */
export interface BuiltinRegistryOptions {
  /** Which built-in model (default `circles`). */
  model?: BuiltinModelName;
  budgetBytes?: number;
  /**
   * Control types to serve. Default: `circles` serves the types it has trained heads for (canny); `random` every
   * type. A `circles` type without a trained head gets an untrained one (zero convolutions: the control is
   * ignored and the base's image comes back), named `untrained-<type>` so no one mistakes it for a trained head.
   */
  heads?: readonly ControlType[];
}

/**
 * The registry of a built-in model, used when no real weights are configured. `circles` is the small model
 * trained by `gpu-worker/src/training` (docs/TRAINING.md): coloured circles at 64x64, a trained canny head.
 * `random` is SD1.5's layout at 32 channels with seeded random weights (its images are noise): it serves every
 * control type at any size, for tests and benchmarks of the architecture.
 */
export async function createBuiltinRegistry(options: BuiltinRegistryOptions = {}): Promise<ModelRegistry> {
  const tokenizer = await ClipTokenizer.fromOpenAIVocab();
  const budgetBytes = options.budgetBytes ?? BUILTIN_HEAD_BUDGET_BYTES;
  if ((options.model ?? 'circles') === 'random') {
    const base: BaseModel = {
      name: BUILTIN_BASE_NAME,
      builtin: true,
      tokenizer,
      clip: createBuiltinClip(),
      unet: createBuiltinUNet(),
      vae: createBuiltinVaeDecoder(),
      vaeEncoder: createBuiltinVaeEncoder(),
    };
    return new ModelRegistry({
      base,
      servedTypes: options.heads ?? CONTROL_TYPES,
      loadHead: async (type) => createBuiltinControlNet(type),
      budgetBytes,
      headName: (type) => `${BUILTIN_BASE_NAME}/${type}`,
    });
  }
  const trained = await loadTrainedBuiltinModel();
  const { manifest } = trained;
  const base: BaseModel = {
    name: manifest.name,
    builtin: true,
    tokenizer,
    clip: trained.clip,
    unet: trained.unet,
    vae: trained.vae,
    vaeEncoder: createBuiltinVaeEncoder(trained.vae.config),
    nativeResolution: manifest.imageSize,
    description: manifest.description,
    suggested: manifest.defaults,
  };
  const trainedTypes = CONTROL_TYPES.filter((type) => manifest.heads[type] !== undefined);
  return new ModelRegistry({
    base,
    servedTypes: options.heads ?? trainedTypes,
    loadHead: async (type) => (await trained.loadHead(type)) ?? trained.untrainedHead(),
    budgetBytes,
    headName: (type) => `${manifest.name}/${manifest.heads[type] ?? `untrained-${type}`}`,
  });
}

/** The CLIPTextConfig fields of a Hugging Face `text_encoder/config.json` (undefined if there is none). */
async function readTextEncoderConfig(path: string): Promise<Partial<ClipTextConfig> | undefined> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const keys = [
    'vocab_size',
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'max_position_embeddings',
    'hidden_act',
    'layer_norm_eps',
  ] as const;
  return Object.fromEntries(keys.filter((key) => raw[key] !== undefined).map((key) => [key, raw[key]]));
}

/** The text encoder's weight file in a diffusers folder: the full-precision file, else the `fp16` variant. */
async function textEncoderWeights(dir: string): Promise<string> {
  for (const name of ['model.safetensors', 'model.fp16.safetensors']) {
    if (
      await stat(join(dir, name)).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return join(dir, name);
  }
  return join(dir, 'model.safetensors');
}

/**
 * The registry of real weights from a model config: the base loaded now (diffusers folder or one original
 * single-file checkpoint), heads from their configured paths on first use.
 */
export async function createRegistryFromConfig(config: ModelConfig): Promise<ModelRegistry> {
  const { path, layout, name } = config.base;
  let base: BaseModel;
  try {
    if (layout === 'diffusers') {
      const [tokenizer, clip, unet, vae] = await Promise.all([
        ClipTokenizer.fromHuggingFaceFolder(join(path, 'tokenizer')),
        readTextEncoderConfig(join(path, 'text_encoder', 'config.json')).then(async (config) =>
          loadClipTextModel(await textEncoderWeights(join(path, 'text_encoder')), { config }),
        ),
        loadUNet(join(path, 'unet')),
        loadVaeDecoder(join(path, 'vae')),
      ]);
      // Optional: a base without encoder weights still serves text-to-image; image modes are then refused.
      const vaeEncoder = await loadVaeEncoder(join(path, 'vae')).catch(() => undefined);
      base = { name, builtin: false, tokenizer, clip, unet, vae, vaeEncoder };
    } else {
      const [tokenizer, clip, unet, vae] = await Promise.all([
        ClipTokenizer.fromOpenAIVocab(),
        loadClipTextModel(path),
        loadUNet(path),
        loadVaeDecoder(path),
      ]);
      const vaeEncoder = await loadVaeEncoder(path).catch(() => undefined);
      base = { name, builtin: false, tokenizer, clip, unet, vae, vaeEncoder };
    }
  } catch (error) {
    throw new RegistryError(
      'model_load_failed',
      `loading the base model from ${path} (${layout}) failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const servedTypes = CONTROL_TYPES.filter((type) => config.heads[type] !== undefined);
  return new ModelRegistry({
    base,
    servedTypes,
    loadHead: (type) => loadControlNet(config.heads[type]!.path),
    budgetBytes: config.memory_budget_mb * 1024 * 1024,
    headName: (type) => basename(config.heads[type]!.path).replace(/\.(safetensors|pth|pt|ckpt)$/, ''),
  });
}
