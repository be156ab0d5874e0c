import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import type { ControlNetHead } from '../../models/controlnet.ts';
import type { UNetModel } from '../../models/unet.ts';
import { timestepSinusoids } from '../../models/unet-blocks.ts';
import type { VaeDecoder, VaeEncoder } from '../../models/vae.ts';
import type { ClipTextModel } from '../../text/model.ts';
import { controlResiduals, type EngineInfo, type ModelEngine, type ScaledControl } from '../model-engine.ts';
import type { Network } from '../network.ts';
import { type GraphPrecision, OnnxBuilder, type Sym } from './builder.ts';
import { OPSET, writeModel } from './serialize.ts';

/**
 * Bumped whenever the graphs this file or the builder make change for the same weights and options, so a
 * disk cache written by an older build is not reused.
 */
export const GRAPH_FORMAT = 3;

/** Options of {@link OrtModelEngine}. */
export interface OrtEngineOptions {
  device: 'cpu' | 'cuda';
  /** fp16 computes in half precision (CUDA); fp16-weights stores weights in half and computes in fp32. */
  precision: GraphPrecision;
  /** Intra-op threads (default: ORT's choice, one per physical core). */
  threads?: number;
  /** Where built graphs are cached (default `CONTOUR_ONNX_CACHE_DIR`, else `<tmpdir>/contour-onnx-cache`). */
  cacheDir?: string;
  /** See {@link WriteOptions.externalThreshold}. */
  externalThreshold?: number;
  /**
   * One step graph per head set (UNet + every active ControlNet: residuals never leave ONNX Runtime), or a
   * UNet graph shared by every head set plus one graph per ControlNet (residuals pass through JS). Fused
   * graphs each hold their own copy of the UNet weights, which a GPU's memory and speed reward and a CPU
   * host's RAM does not (full-size SD1.5 with two heads needs ~21 GiB fused, ~13 GiB unfused). Default: fused
   * on cuda, unfused on cpu; `CONTOUR_ONNX_FUSE_HEADS=1|0` overrides.
   */
  fuseHeads?: boolean;
  /** Sessions kept open (least recently used closed first; default 6). */
  maxSessions?: number;
  /** Called with one line when a graph is built or loaded from the cache. */
  log?: (message: string) => void;
}

/** Default graph cache folder. */
export function defaultCacheDir(): string {
  return process.env['CONTOUR_ONNX_CACHE_DIR'] || join(tmpdir(), 'contour-onnx-cache');
}

/** Weights of a model as named tensors. */
function namedTensors(model: object): [string, tf.Tensor][] {
  if ('params' in model) return [...(model as UNetModel).params.entries()];
  return (model as ClipTextModel).namedWeights();
}

function versionOf(model: object): number {
  return 'params' in model ? (model as UNetModel).params.version : 0;
}

/** Runs the models on ONNX Runtime from graphs built from their own definitions (see OnnxBuilder). */
export class OrtModelEngine implements ModelEngine {
  readonly info: EngineInfo;
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>();
  /** The models each open session was built from, so an evicted head's sessions can be closed. */
  private readonly sessionModels = new Map<string, readonly object[]>();
  /** Each session keeps its own copy of the weights beside the caller's tfjs tensors. */
  readonly weightCopies = 2;
  private readonly hashes = new WeakMap<object, { version: number; hash: string }>();
  private readonly cacheDir: string;
  /** Counts of graphs built and loaded from the disk cache (for tests and logs). */
  readonly stats = { built: 0, loadedFromCache: 0 };

  /** Whether {@link controlledEps} runs one fused graph per head set (see {@link OrtEngineOptions.fuseHeads}). */
  readonly fuseHeads: boolean;

  constructor(
    private readonly ort: typeof Ort,
    readonly options: OrtEngineOptions,
  ) {
    this.cacheDir = options.cacheDir ?? defaultCacheDir();
    const fuseEnv = process.env['CONTOUR_ONNX_FUSE_HEADS'];
    this.fuseHeads =
      options.fuseHeads ?? (fuseEnv === '1' ? true : fuseEnv === '0' ? false : options.device === 'cuda');
    const precision = options.precision === 'fp16' ? 'fp16' : 'fp32';
    const providers = options.device === 'cuda' ? 'cuda,cpu' : 'cpu';
    this.info = {
      engine: 'onnxruntime',
      device: options.device,
      precision,
      detail: `onnxruntime-node ${ort.env.versions?.node ?? ''} providers=${providers} threads=${options.threads ?? 'auto'}${options.precision === 'fp16-weights' ? ' weights=fp16' : ''}`,
    };
  }

  /** Hash of a model's weights (cached while its ParamStore is unchanged). */
  weightsHash(model: object): string {
    const version = versionOf(model);
    const known = this.hashes.get(model);
    if (known && known.version === version) return known.hash;
    const hash = createHash('sha256');
    for (const [name, tensor] of namedTensors(model).sort(([a], [b]) => (a < b ? -1 : 1))) {
      hash.update(`${name}:${tensor.shape.join('x')}:${tensor.dtype};`);
      const data = tensor.dataSync() as Float32Array;
      hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    const digest = hash.digest('hex');
    this.hashes.set(model, { version, hash: digest });
    return digest;
  }

  /**
   * The session for a graph: from memory, else from the disk cache, else built, written and loaded. `models`
   * (their weights' hashes) and `shapes` key it; `build` records it on a builder.
   */
  session(
    kind: string,
    models: object[],
    shapes: unknown,
    build: (b: OnnxBuilder) => void,
  ): Promise<Ort.InferenceSession> {
    const { device, precision } = this.options;
    const key = createHash('sha256')
      .update(
        JSON.stringify({
          format: GRAPH_FORMAT,
          opset: OPSET,
          kind,
          weights: models.map((m) => this.weightsHash(m)),
          shapes,
          device,
          precision,
        }),
      )
      .digest('hex')
      .slice(0, 32);
    const open = this.sessions.get(key);
    if (open) {
      // Most recently used last.
      this.sessions.delete(key);
      this.sessions.set(key, open);
      return open;
    }
    const created = this.create(kind, key, build);
    this.sessions.set(key, created);
    this.sessionModels.set(key, models);
    created.catch(() => this.close(key));
    const max = this.options.maxSessions ?? 6;
    while (this.sessions.size > max) this.close(this.sessions.keys().next().value!);
    return created;
  }

  /** Closes one open session. */
  private close(key: string): void {
    const session = this.sessions.get(key);
    this.sessions.delete(key);
    this.sessionModels.delete(key);
    session?.then((s) => s.release()).catch(() => {});
  }

  async releaseModel(model: object): Promise<void> {
    for (const [key, models] of [...this.sessionModels]) if (models.includes(model)) this.close(key);
  }

  private async create(
    kind: string,
    key: string,
    build: (b: OnnxBuilder) => void,
  ): Promise<Ort.InferenceSession> {
    mkdirSync(this.cacheDir, { recursive: true });
    const path = join(this.cacheDir, `${kind}-${key}.onnx`);
    if (existsSync(path)) {
      this.stats.loadedFromCache++;
      this.options.log?.(`onnx graph ${kind} loaded from cache ${path}`);
    } else {
      const started = performance.now();
      const builder = new OnnxBuilder({ precision: this.options.precision });
      // Build and serialise inside one tidy: intermediates (e.g. sliced embeddings) live until written.
      const external = tf.tidy(() => {
        build(builder);
        return writeModel(builder, path, { externalThreshold: this.options.externalThreshold });
      });
      this.stats.built++;
      this.options.log?.(
        `onnx graph ${kind} built: ${builder.nodes.length} nodes, ${builder.initializers.length} initializers${external ? ' (external data)' : ''}, ${Math.round(performance.now() - started)} ms -> ${path}`,
      );
    }
    return this.ort.InferenceSession.create(path, {
      executionProviders: this.options.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
      graphOptimizationLevel: 'all',
      ...(this.options.threads ? { intraOpNumThreads: this.options.threads } : {}),
    });
  }

  private async feed(t: tf.Tensor): Promise<Ort.Tensor> {
    if (t.dtype === 'int32') return new this.ort.Tensor('int32', (await t.data()) as Int32Array, t.shape);
    return new this.ort.Tensor('float32', (await t.data()) as Float32Array, t.shape);
  }

  private sinusoids(timesteps: readonly number[], dim: number): Ort.Tensor {
    return new this.ort.Tensor('float32', timestepSinusoids(timesteps, dim), [timesteps.length, dim]);
  }

  private static fetch(out: Ort.InferenceSession.ReturnType, name: string): tf.Tensor {
    const value = out[name]!;
    return tf.tensor(value.data as Float32Array, value.dims as number[]);
  }

  async encodeHint(net: ControlNetHead, hint: tf.Tensor4D): Promise<tf.Tensor4D> {
    const session = await this.session('hint', [net], hint.shape, (b) => {
      b.output('encoded', net.buildHint(b, b.input('hint', hint.shape, 'image')), 'image');
    });
    const out = await session.run({ hint: await this.feed(hint) });
    return OrtModelEngine.fetch(out, 'encoded') as tf.Tensor4D;
  }

  async controlNet(
    net: ControlNetHead,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    encodedHint: tf.Tensor4D,
  ): Promise<tf.Tensor4D[]> {
    const mc = net.config.model_channels;
    const session = await this.session(
      'controlnet',
      [net],
      [x.shape, context.shape, encodedHint.shape],
      (b) => {
        const residuals = net.build(
          b,
          b.input('x', x.shape, 'image'),
          b.input('sinusoids', [x.shape[0], mc]),
          b.input('context', context.shape),
          b.input('hint', encodedHint.shape, 'image'),
        );
        for (const [i, r] of residuals.entries()) b.output(`r${i}`, r, 'image');
      },
    );
    const out = await session.run({
      x: await this.feed(x),
      sinusoids: this.sinusoids(timesteps, mc),
      context: await this.feed(context),
      hint: await this.feed(encodedHint),
    });
    return Array.from(
      { length: session.outputNames.length },
      (_, i) => OrtModelEngine.fetch(out, `r${i}`) as tf.Tensor4D,
    );
  }

  async unet(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    controls?: tf.Tensor4D[],
  ): Promise<tf.Tensor4D> {
    const mc = unet.config.model_channels;
    const session = await this.session(
      'unet',
      [unet],
      [x.shape, context.shape, controls?.map((c) => c.shape) ?? null],
      (b) => {
        const eps = unet.build(
          b,
          b.input('x', x.shape, 'image'),
          b.input('sinusoids', [x.shape[0], mc]),
          b.input('context', context.shape),
          controls?.map((c, i) => b.input(`c${i}`, c.shape, 'image')),
        );
        b.output('eps', eps, 'image');
      },
    );
    const feeds: Record<string, Ort.Tensor> = {
      x: await this.feed(x),
      sinusoids: this.sinusoids(timesteps, mc),
      context: await this.feed(context),
    };
    for (const [i, c] of (controls ?? []).entries()) feeds[`c${i}`] = await this.feed(c);
    return OrtModelEngine.fetch(await session.run(feeds), 'eps') as tf.Tensor4D;
  }

  /**
   * One graph per (UNet, active head set, shapes): the heads' residuals are scaled, summed and added inside
   * it, so they never leave the runtime; scales are inputs, so strength changes reuse the graph.
   */
  async controlledEps(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    units: readonly ScaledControl[],
    controlled: number,
  ): Promise<tf.Tensor4D> {
    if (units.length === 0) return this.unet(unet, x, timesteps, context);
    if (!this.fuseHeads) return this.modularControlledEps(unet, x, timesteps, context, units, controlled);
    const mc = unet.config.model_channels;
    const batch = x.shape[0];
    const session = await this.session(
      'step',
      [unet, ...units.map((u) => u.net)],
      [x.shape, context.shape, controlled, units.map((u) => [u.encodedHint.shape, u.scales.length])],
      (b) => {
        const xs = b.input('x', x.shape, 'image');
        const sin = b.input('sinusoids', [batch, mc]);
        const ctx = b.input('context', context.shape);
        const cx = b.sliceBatch(xs, controlled);
        const cs = b.sliceBatch(sin, controlled);
        const cc = b.sliceBatch(ctx, controlled);
        let sum: Sym[] | undefined;
        units.forEach((unit, k) => {
          let hint = b.input(`hint${k}`, unit.encodedHint.shape, 'image');
          const hintBatch = unit.encodedHint.shape[0];
          if (hintBatch !== 1 && hintBatch !== controlled)
            hint = b.concatBatch(Array<Sym>(controlled / hintBatch).fill(hint));
          const scales = b.input(`scales${k}`, [unit.scales.length]);
          const scaled = unit.net.build(b, cx, cs, cc, hint).map((r, i) => b.mul(r, b.element(scales, i)));
          sum = sum ? sum.map((s, i) => b.add(s, scaled[i]!)) : scaled;
        });
        if (sum && controlled < batch) {
          sum = sum.map((r) => b.concatBatch([r, b.zeros([batch - controlled, ...r.shape.slice(1)])]));
        }
        b.output('eps', unet.build(b, xs, sin, ctx, sum), 'image');
      },
    );
    const feeds: Record<string, Ort.Tensor> = {
      x: await this.feed(x),
      sinusoids: this.sinusoids(timesteps, mc),
      context: await this.feed(context),
    };
    for (const [k, unit] of units.entries()) {
      feeds[`hint${k}`] = await this.feed(unit.encodedHint);
      feeds[`scales${k}`] = new this.ort.Tensor('float32', Float32Array.from(unit.scales), [
        unit.scales.length,
      ]);
    }
    return OrtModelEngine.fetch(await session.run(feeds), 'eps') as tf.Tensor4D;
  }

  /**
   * {@link controlledEps} without a fused graph: each ControlNet's own graph, the residuals scaled and summed
   * in unit order on tfjs (zero for guess mode's unconditional half), then the one UNet-with-residuals graph
   * every head set shares, so each weight is held once.
   */
  private async modularControlledEps(
    unet: UNetModel,
    x: tf.Tensor4D,
    timesteps: readonly number[],
    context: tf.Tensor3D,
    units: readonly ScaledControl[],
    controlled: number,
  ): Promise<tf.Tensor4D> {
    const sum = await controlResiduals(x, timesteps, context, units, controlled, (net, ...args) =>
      this.controlNet(net, ...args),
    );
    try {
      return await this.unet(unet, x, timesteps, context, sum);
    } finally {
      if (sum) tf.dispose(sum);
    }
  }

  async decodeLatents(vae: VaeDecoder, latents: tf.Tensor4D): Promise<tf.Tensor4D> {
    const session = await this.session('vae-decoder', [vae], latents.shape, (b) => {
      b.output('image', vae.buildDecodeLatents(b, b.input('latents', latents.shape, 'image')), 'image');
    });
    return OrtModelEngine.fetch(
      await session.run({ latents: await this.feed(latents) }),
      'image',
    ) as tf.Tensor4D;
  }

  async encodeMean(vae: VaeEncoder, images: tf.Tensor4D): Promise<tf.Tensor4D> {
    const session = await this.session('vae-encoder', [vae], images.shape, (b) => {
      b.output('latents', vae.buildEncodeMean(b, b.input('images', images.shape, 'image')), 'image');
    });
    return OrtModelEngine.fetch(
      await session.run({ images: await this.feed(images) }),
      'latents',
    ) as tf.Tensor4D;
  }

  async encodeText(clip: ClipTextModel, ids: tf.Tensor2D): Promise<tf.Tensor3D> {
    clip.idTensor(ids, ids.shape[1]);
    const session = await this.session('clip-text', [clip], ids.shape, (b) => {
      b.output('hidden', clip.build(b, b.input('ids', ids.shape, 'int32')));
    });
    return OrtModelEngine.fetch(await session.run({ ids: await this.feed(ids) }), 'hidden') as tf.Tensor3D;
  }

  async runNetwork(net: Network, inputs: readonly tf.Tensor4D[]): Promise<tf.Tensor[]> {
    const session = await this.session(
      net.kind,
      [net],
      inputs.map((x) => x.shape),
      (b) => {
        const syms = inputs.map((x, i) => b.input(`in${i}`, x.shape, 'image'));
        for (const [i, o] of net.forward(b, syms).entries())
          b.output(`out${i}`, o.value, o.image ? 'image' : 'tensor');
      },
    );
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [i, x] of inputs.entries()) feeds[`in${i}`] = await this.feed(x);
    const out = await session.run(feeds);
    return session.outputNames.map((name) => OrtModelEngine.fetch(out, name));
  }

  async dispose(): Promise<void> {
    const open = [...this.sessions.values()];
    this.sessions.clear();
    this.sessionModels.clear();
    await Promise.all(open.map((s) => s.then((session) => session.release()).catch(() => {})));
  }
}
