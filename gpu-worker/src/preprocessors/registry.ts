import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PREPROCESSORS, type PreprocessorName } from '@contour/shared/contracts';
import type { Image8 } from '@contour/shared/preprocess';
import type { ModelEngine } from '../engine/model-engine.ts';
import type {
  AnnotatorModel,
  PreprocessorDefinition,
  PreprocessorParams,
  PreprocessorResult,
} from './types.ts';

/** Why a preprocessor cannot run here: not built into this worker, or its weights are not installed. */
export class PreprocessorUnavailableError extends Error {
  override readonly name = 'PreprocessorUnavailableError';
  readonly code = 'model_not_available';
  constructor(
    readonly preprocessor: string,
    message: string,
    readonly missingFiles: readonly string[] = [],
  ) {
    super(message);
  }
}

/** One preprocessor as /v1/models lists it. */
export interface PreprocessorStatus {
  name: string;
  /** Weights present (or none needed). */
  available: boolean;
  /** Its model is loaded now. */
  loaded: boolean;
  /** Weight files it needs that are missing. */
  missing: string[];
}

/** Options of {@link PreprocessorRegistry}. */
export interface PreprocessorRegistryOptions {
  definitions: readonly PreprocessorDefinition[];
  /** Folder holding the annotator checkpoints (lllyasviel/Annotators names); undefined = none installed. */
  annotatorDir: string | undefined;
  /** Bytes of annotator weights kept loaded (times the engine's weight copies); the model in use always stays. */
  budgetBytes: number;
  engine: ModelEngine;
  log?: (line: string) => void;
}

interface Loaded {
  model: AnnotatorModel;
  /** In-flight runs using it (never evicted while > 0). */
  users: number;
}

/**
 * The worker's network preprocessors: looks their weights up in the annotator folder, loads each annotator model
 * once and keeps it between requests, evicting least recently used models beyond the memory budget.
 */
export class PreprocessorRegistry {
  private readonly definitions = new Map<string, PreprocessorDefinition>();
  /** Loaded (or loading) models by key, least recently used first. */
  private readonly models = new Map<string, Promise<Loaded>>();
  /** Counters for /metrics and tests. */
  readonly stats = { loads: 0, evictions: 0 };

  constructor(private readonly options: PreprocessorRegistryOptions) {
    for (const definition of options.definitions) this.definitions.set(definition.name, definition);
  }

  /** Names this worker has code for. */
  get names(): string[] {
    return [...this.definitions.keys()];
  }

  /** Weight files of a preprocessor that are not in the annotator folder. */
  missingFiles(name: string): string[] {
    const files = this.definitions.get(name)?.model?.files ?? [];
    const dir = this.options.annotatorDir;
    return files.filter((file) => !dir || !existsSync(join(dir, file)));
  }

  /** Every preprocessor with its availability. */
  status(): PreprocessorStatus[] {
    return this.names.map((name) => {
      const key = this.definitions.get(name)?.model?.key;
      const missing = this.missingFiles(name);
      return { name, available: missing.length === 0, loaded: key ? this.models.has(key) : false, missing };
    });
  }

  /** Throws {@link PreprocessorUnavailableError} unless `name` can run here. */
  check(name: string): PreprocessorDefinition {
    const definition = this.definitions.get(name);
    if (!definition) {
      throw new PreprocessorUnavailableError(name, `this worker has no ${name} preprocessor`);
    }
    const missing = this.missingFiles(name);
    if (missing.length > 0) {
      const where = this.options.annotatorDir ?? '(no annotator folder: set CONTOUR_ANNOTATOR_DIR)';
      throw new PreprocessorUnavailableError(
        name,
        `the ${name} preprocessor needs ${missing.join(', ')} in ${where}; install with: node infra/download-weights.mjs --out <weights dir> --preprocessors ${name}`,
        missing,
      );
    }
    return definition;
  }

  /** Runs a preprocessor on an image already HWC3 + resized to its detect resolution. */
  async run(name: string, image: Image8<3>, params: PreprocessorParams): Promise<PreprocessorResult> {
    const definition = this.check(name);
    const spec = definition.model;
    if (!spec)
      return definition.run({ engine: this.options.engine, image, params, model: undefined as never });
    const loaded = await this.acquire(spec.key, () => {
      const dir = this.options.annotatorDir!;
      const paths = Object.fromEntries(spec.files.map((file) => [file, join(dir, file)]));
      return spec.load(paths);
    });
    try {
      return await definition.run({ engine: this.options.engine, image, params, model: loaded.model });
    } finally {
      loaded.users--;
    }
  }

  private async acquire(key: string, load: () => Promise<AnnotatorModel>): Promise<Loaded> {
    let entry = this.models.get(key);
    if (entry) {
      this.models.delete(key);
    } else {
      const started = performance.now();
      entry = load().then((model) => {
        this.stats.loads++;
        this.options.log?.(
          `preprocessor model ${key} loaded: ${(model.bytes / 2 ** 20).toFixed(1)} MiB in ${Math.round(performance.now() - started)} ms`,
        );
        return { model, users: 0 };
      });
      entry.catch(() => this.models.delete(key));
    }
    this.models.set(key, entry);
    const loaded = await entry;
    loaded.users++;
    await this.evict(key);
    return loaded;
  }

  /** Least recently used models out until the rest fit the budget (`keep` and models in use stay). */
  private async evict(keep: string): Promise<void> {
    const copies = this.options.engine.weightCopies;
    const settled: [string, Loaded][] = [];
    for (const [key, entry] of this.models) settled.push([key, await entry]);
    let total = settled.reduce((sum, [, l]) => sum + l.model.bytes * copies, 0);
    for (const [key, loaded] of settled) {
      if (total <= this.options.budgetBytes) break;
      if (key === keep || loaded.users > 0) continue;
      this.models.delete(key);
      total -= loaded.model.bytes * copies;
      for (const network of loaded.model.networks) await this.options.engine.releaseModel(network);
      loaded.model.dispose();
      this.stats.evictions++;
      this.options.log?.(`preprocessor model ${key} evicted (memory budget)`);
    }
  }

  /** Frees every loaded model. */
  async dispose(): Promise<void> {
    for (const entry of this.models.values()) {
      const loaded = await entry.catch(() => undefined);
      if (!loaded) continue;
      for (const network of loaded.model.networks) await this.options.engine.releaseModel(network);
      loaded.model.dispose();
    }
    this.models.clear();
  }
}

/** The shared catalogue's network preprocessors that have no definition in this build (reported by /v1/models). */
export function unbuiltPreprocessors(definitions: readonly PreprocessorDefinition[]): PreprocessorName[] {
  const built = new Set(definitions.map((d) => d.name));
  return (Object.keys(PREPROCESSORS) as PreprocessorName[]).filter(
    (name) => PREPROCESSORS[name].stage === 'worker' && !built.has(name),
  );
}
