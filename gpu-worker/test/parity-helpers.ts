import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { type ModelEngine, tfModelEngine } from '../src/engine/model-engine.ts';
import { OrtModelEngine } from '../src/engine/onnx/ort-engine.ts';
import {
  type ControlNetConfig,
  controlNetConfigFor,
  type UNetConfig,
  type VaeConfig,
} from '../src/models/config.ts';
import { SafetensorsFile } from '../src/weights/safetensors.ts';

/** Path of a file under test/fixtures. */
export function fixturePath(relative: string): string {
  return fileURLToPath(new URL(`./fixtures/${relative}`, import.meta.url));
}

/** The small SD1.5-shaped configuration the reference fixtures were produced with (`__metadata__.config`). */
export interface ReferenceConfig {
  unet: UNetConfig;
  controlnet: ControlNetConfig;
  vae: VaeConfig;
}

/** Reads the reference's compact config into the ldm-style config objects. */
export function referenceConfig(metadata: Record<string, string>): ReferenceConfig {
  const raw = JSON.parse(metadata['config']!) as {
    mc: number;
    attn: number[];
    nrb: number;
    mult: number[];
    heads: number;
    ctx: number;
    vae_ch: number;
    vae_mult: number[];
  };
  const unet = {
    in_channels: 4,
    out_channels: 4,
    model_channels: raw.mc,
    attention_resolutions: raw.attn,
    num_res_blocks: raw.nrb,
    channel_mult: raw.mult,
    num_heads: raw.heads,
    transformer_depth: 1,
    context_dim: raw.ctx,
    use_linear_in_transformer: false,
  };
  return {
    unet,
    controlnet: controlNetConfigFor(unet),
    // The fixture README: decoder with num_res_blocks 1, z 4, post_quant_conv 4->4.
    vae: {
      embed_dim: 4,
      z_channels: 4,
      in_channels: 3,
      out_ch: 3,
      ch: raw.vae_ch,
      ch_mult: raw.vae_mult,
      num_res_blocks: 1,
      double_z: true,
      scale_factor: 0.18215,
    },
  };
}

/** Opens `parity/<name>.weights.safetensors` and `parity/<name>.io.safetensors`. */
export async function openReference(name: 'refA' | 'refC_f16_guess') {
  const weights = await SafetensorsFile.open(fixturePath(`parity/${name}.weights.safetensors`));
  const io = await SafetensorsFile.open(fixturePath(`parity/${name}.io.safetensors`));
  return { weights, io, config: referenceConfig(weights.metadata) };
}

/** NCHW float data -> NHWC tensor. */
export function nchwToNhwc(data: Float32Array, shape: number[]): tf.Tensor4D {
  return tf.tidy(() => tf.tensor4d(data, shape as [number, number, number, number]).transpose([0, 2, 3, 1]));
}

/** NHWC tensor -> NCHW float data (disposes nothing). */
export function nhwcToNchwData(x: tf.Tensor4D): Float32Array {
  return tf.tidy(() => x.transpose([0, 3, 1, 2])).dataSync() as Float32Array;
}

/** Reads an io tensor as an NHWC tf tensor. */
export async function readNhwc(io: SafetensorsFile, name: string): Promise<tf.Tensor4D> {
  return nchwToNhwc(await io.readFloat32(name), io.info(name).shape);
}

/** max |actual - expected| / max |expected|: relative error against the reference's scale. */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

/** The engines every numeric reference test runs on: tfjs (wasm backend) and ONNX Runtime (CPU, fp32). */
export const ENGINES = ['tfjs', 'onnxruntime'] as const;

/** An engine for the reference tests; ONNX Runtime builds its graphs into a fresh cache folder. */
export async function testEngine(
  name: (typeof ENGINES)[number],
  options: { fuseHeads?: boolean } = {},
): Promise<ModelEngine> {
  if (name === 'tfjs') return tfModelEngine;
  const cacheDir = await mkdtemp(join(tmpdir(), 'contour-onnx-test-'));
  return new OrtModelEngine(await import('onnxruntime-node'), {
    device: 'cpu',
    precision: 'fp32',
    cacheDir,
    ...options,
  });
}
