import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import type { GraphNode, GraphValue, OnnxBuilder } from './builder.ts';

const { onnx } = onnxProto;

/** Opset of the default domain: 17 is the first with LayerNormalization. */
export const OPSET = 17;

/** Attributes ONNX declares as float (every other number is an int). */
const FLOAT_ATTRIBUTES = new Set(['epsilon', 'alpha', 'beta', 'scale']);

function attribute(name: string, value: GraphNode['attributes'][string]): OnnxTypes.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'string')
    return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if (FLOAT_ATTRIBUTES.has(name)) return { name, type: AttributeType.FLOAT, f: value };
  return { name, type: AttributeType.INT, i: value };
}

function valueInfo({ name, shape, dataType }: GraphValue): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: dataType, shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
  };
}

/** Options of {@link writeModel}. */
export interface WriteOptions {
  /**
   * Total initializer bytes above which initializers go to `<model>.data` (ONNX external data): a protobuf
   * message cannot exceed 2 GB. Default 1.5 GiB, `CONTOUR_ONNX_EXTERNAL_BYTES` overrides it.
   */
  externalThreshold?: number;
}

const ELEMENT_BYTES: Record<number, number> = { 1: 4, 6: 4, 7: 8, 10: 2 };

function byteSize(dims: number[], dataType: number): number {
  return dims.reduce((a, b) => a * b, 1) * (ELEMENT_BYTES[dataType] ?? 4);
}

/** Initializers smaller than this stay inside the model even when the rest goes external. */
const KEEP_INLINE_BYTES = 1024;

/** Default {@link WriteOptions.externalThreshold}. */
export function defaultExternalThreshold(): number {
  const fromEnv = Number(process.env['CONTOUR_ONNX_EXTERNAL_BYTES']);
  return Number.isFinite(fromEnv) && fromEnv > 0 ? fromEnv : 1.5 * 1024 ** 3;
}

/**
 * Serialises a built graph to `path` (written to a temporary name, then renamed, so a concurrent reader never
 * sees half a file). Returns whether external data was used.
 */
export function writeModel(builder: OnnxBuilder, path: string, options: WriteOptions = {}): boolean {
  const threshold = options.externalThreshold ?? defaultExternalThreshold();
  // Sizes from the dims, so the data of a large model is made (and written) one initializer at a time.
  const total = builder.initializers.reduce((sum, init) => sum + byteSize(init.dims, init.dataType), 0);
  const external = total > threshold;
  const dataPath = `${path}.data`;
  const partial = `.partial-${process.pid}`;
  let dataFd: number | undefined;
  let offset = 0;
  if (external) dataFd = openSync(dataPath + partial, 'w');
  try {
    const initializer: OnnxTypes.ITensorProto[] = builder.initializers.map((init) => {
      const bytes = init.bytes();
      const base = { name: init.name, dims: init.dims, dataType: init.dataType };
      if (dataFd === undefined || bytes.byteLength < KEEP_INLINE_BYTES) return { ...base, rawData: bytes };
      writeSync(dataFd, bytes, 0, bytes.byteLength, offset);
      const entry = {
        ...base,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: basename(dataPath) },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(bytes.byteLength) },
        ],
      };
      offset += bytes.byteLength;
      return entry;
    });
    const model: OnnxTypes.IModelProto = {
      irVersion: 8,
      producerName: 'contour',
      opsetImport: [
        { domain: '', version: OPSET },
        { domain: 'com.microsoft', version: 1 },
      ],
      graph: {
        name: 'contour',
        node: builder.nodes.map((n) => ({
          opType: n.opType,
          input: n.inputs,
          output: n.outputs,
          domain: n.domain ?? '',
          attribute: Object.entries(n.attributes).map(([k, v]) => attribute(k, v)),
        })),
        initializer,
        input: builder.inputs.map(valueInfo),
        output: builder.outputs.map(valueInfo),
      },
    };
    const bytes = onnx.ModelProto.encode(model).finish();
    const fd = openSync(path + partial, 'w');
    try {
      writeSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
  } finally {
    if (dataFd !== undefined) closeSync(dataFd);
  }
  if (external) renameSync(dataPath + partial, dataPath);
  renameSync(path + partial, path);
  return external;
}
