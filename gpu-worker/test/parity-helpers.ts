import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { type ModelEngine, tfModelEngine } from '../src/engine/model-engine.ts';
import { OrtModelEngine } from '../src/engine/onnx/ort-engine.ts';
import { referenceConfig } from '../src/engine/reference.ts';
import { SafetensorsFile } from '../src/weights/safetensors.ts';

export { type ReferenceConfig, referenceConfig, relativeError } from '../src/engine/reference.ts';

/** Path of a file under test/fixtures. */
export function fixturePath(relative: string): string {
  return fileURLToPath(new URL(`./fixtures/${relative}`, import.meta.url));
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

/** Samples where two uint8 maps differ, and the largest difference. */
export function mapDiff(actual: Uint8Array, expected: ArrayLike<number>): { count: number; max: number } {
  let count = 0;
  let max = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

/** A reference's one-channel map as HWC3 bytes (the apps' HWC3). */
export function grayToHwc3(gray: Float32Array): Uint8Array {
  const out = new Uint8Array(gray.length * 3);
  for (let i = 0; i < gray.length; i++) out.fill(gray[i]!, 3 * i, 3 * i + 3);
  return out;
}
