import * as tf from '@tensorflow/tfjs';
import type { ControlNetConfig, UNetConfig, VaeConfig } from '../models/config.ts';
import type { ParamStore } from '../models/params.ts';
import {
  controlNetConfigToDiffusers,
  unetDiffusersConfig,
  vaeConfigToDiffusers,
  writeDiffusersComponent,
} from '../weights/convert.ts';
import { type Component, diffusersLayout } from '../weights/keymap.ts';
import type { SafetensorsTensorInput } from '../weights/safetensors.ts';

/** TensorFlow.js layout back to PyTorch's (HWIO conv kernels -> OIHW, [in, out] linear weights -> [out, in]). */
export function tfToTorchLayout(values: Float32Array, torchShape: readonly number[]): Float32Array {
  if (torchShape.length === 4) {
    const [o, i, h, w] = torchShape as [number, number, number, number];
    const out = new Float32Array(values.length);
    for (let oc = 0; oc < o; oc++)
      for (let ic = 0; ic < i; ic++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            out[((oc * i + ic) * h + y) * w + x] = values[((y * w + x) * i + ic) * o + oc]!;
    return out;
  }
  if (torchShape.length === 2) {
    const [o, i] = torchShape as [number, number];
    const out = new Float32Array(values.length);
    for (let oc = 0; oc < o; oc++) for (let ic = 0; ic < i; ic++) out[oc * i + ic] = values[ic * o + oc]!;
    return out;
  }
  return values;
}

/** The store's tensors under their diffusers names, in PyTorch layout. */
export function diffusersTensors(
  params: ParamStore,
  component: Component,
  geometry: Parameters<typeof diffusersLayout>[1],
  dtype: 'F32' | 'F16',
): Record<string, SafetensorsTensorInput> {
  const layout = diffusersLayout(component, geometry);
  const isVae = component === 'vae-decoder' || component === 'vae-encoder';
  const out: Record<string, SafetensorsTensorInput> = {};
  for (const [name, shape] of params.specs) {
    const data = tfToTorchLayout(params.get(name).dataSync() as Float32Array, shape);
    // diffusers stores the VAE's 1x1-conv attention projections as Linear [out, in].
    const vaeAttention = isVae && /\.mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(name);
    out[layout.fileKeys(name)[0]!] = { dtype, shape: vaeAttention ? shape.slice(0, 2) : [...shape], data };
  }
  return out;
}

/** Saves a ControlNet as a diffusers ControlNetModel folder (config.json + diffusion_pytorch_model.safetensors). */
export function saveControlNet(
  dir: string,
  params: ParamStore,
  config: ControlNetConfig,
  dtype: 'F32' | 'F16' = 'F32',
): Promise<void> {
  return writeDiffusersComponent(
    dir,
    controlNetConfigToDiffusers(config),
    diffusersTensors(params, 'controlnet', config, dtype),
  );
}

/** Saves a UNet as a diffusers UNet2DConditionModel folder. */
export function saveUNet(
  dir: string,
  params: ParamStore,
  config: UNetConfig,
  dtype: 'F32' | 'F16' = 'F32',
): Promise<void> {
  return writeDiffusersComponent(
    dir,
    unetDiffusersConfig(config),
    diffusersTensors(params, 'unet', config, dtype),
  );
}

/** Saves a VAE decoder as a diffusers AutoencoderKL folder (decoder weights only). */
export function saveVaeDecoder(
  dir: string,
  params: ParamStore,
  config: VaeConfig,
  dtype: 'F32' | 'F16' = 'F32',
): Promise<void> {
  return writeDiffusersComponent(
    dir,
    vaeConfigToDiffusers(config),
    diffusersTensors(params, 'vae-decoder', config, dtype),
  );
}

let variableCounter = 0;

/** Converts every loaded parameter of a store to a trainable `tf.Variable` (in place); returns them by name. */
export function makeTrainable(
  params: ParamStore,
  filter: (name: string) => boolean = () => true,
): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [name, value] of [...params.entries()]) {
    if (!filter(name)) continue;
    const variable =
      value instanceof tf.Variable ? value : tf.variable(value, true, `train/${variableCounter++}/${name}`);
    if (variable !== value) params.setTensor(name, variable);
    out.set(name, variable);
  }
  return out;
}
