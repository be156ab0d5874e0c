import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINES, fixturePath, nchwToNhwc, relativeError, testEngine } from '../../test/parity-helpers.ts';
import { initBackend } from '../backend.ts';
import { ParamStore } from '../models/params.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import type { ModelEngine } from './model-engine.ts';
import type { Network, NetworkOutput } from './network.ts';
import type { ConvOptions, Ops, Pad2d, ResizeMode } from './ops.ts';

/** One case of test/fixtures/ops (see make_reference.py there). */
interface OpCase {
  name: string;
  op: string;
  // biome-ignore lint/suspicious/noExplicitAny: the arguments are the JSON the reference script wrote.
  args: Record<string, any>;
}

/** Each op on its case's inputs: images stay images, the ordinary-tensor ops run on toTokens of the inputs. */
function apply<T>(ops: Ops<T>, c: OpCase, inputs: T[], p: ParamStore): NetworkOutput<T> {
  const a = c.args;
  const opt = (name: string) => (p.specs.has(name) ? p.get(name) : undefined);
  const image = (value: T) => ({ value, image: true });
  const tensor = (value: T) => ({ value, image: false });
  const [x] = inputs as [T];
  switch (c.op) {
    case 'conv':
      return image(ops.conv(x, p.get('w'), opt('b'), a as ConvOptions));
    case 'convTranspose':
      return image(ops.convTranspose(x, p.get('w'), opt('b'), a.stride, a.pad, a.outputPad));
    case 'maxPool':
      return image(ops.maxPool(x, a.kernel, a.stride, a.pad as Pad2d, a.ceil));
    case 'avgPool':
      return image(ops.avgPool(x, a.kernel, a.stride, a.pad as Pad2d));
    case 'adaptiveAvgPool':
      return image(ops.adaptiveAvgPool(x, a.h, a.w));
    case 'channelAffine':
      return image(ops.channelAffine(x, p.get('scale'), p.get('shift')));
    case 'instanceNorm':
      return image(ops.instanceNorm(x, a.eps, opt('w'), opt('b')));
    case 'padImage':
      return image(ops.padImage(x, a.pad as Pad2d, a.mode, a.value));
    case 'resize':
      return image(ops.resize(x, a.h, a.w, a.mode as ResizeMode, a.alignCorners));
    case 'cropImage':
      return image(ops.cropImage(x, a.top, a.left, a.h, a.w));
  }
  const tokens = inputs.map((i) => ops.toTokens(i));
  const [t] = tokens as [T];
  switch (c.op) {
    case 'concat':
      return tensor(ops.concat(tokens, a.axis));
    case 'slice':
      return tensor(ops.slice(t, a.axis, a.start, a.size));
    case 'clip':
      return tensor(ops.clip(t, a.lo, a.hi));
    case 'leakyRelu':
      return tensor(ops.leakyRelu(t, a.alpha));
    case 'elu':
      return tensor(ops.elu(t));
    case 'sigmoid':
      return tensor(ops.sigmoid(t));
    case 'tanh':
      return tensor(ops.tanh(t));
    case 'softmax':
      return tensor(ops.softmax(t));
  }
  throw new Error(`unknown op ${c.op}`);
}

const PARAMS = ['w', 'b', 'scale', 'shift'];
const INPUTS = ['x', 'x2'];

describe('annotator ops (engine/ops.ts) match torch.nn.functional on both engines', async () => {
  const io = await SafetensorsFile.open(fixturePath('ops/ops.io.safetensors'));
  const cases = JSON.parse(io.metadata['cases']!) as OpCase[];
  const has = (name: string) => io.tensors.has(name);

  beforeAll(async () => {
    await initBackend({ force: 'wasm', log: () => {} });
  });
  afterAll(async () => {
    await io.close();
  });

  it('the fixture covers every annotator op', () => {
    const ops = new Set(cases.map((c) => c.op));
    for (const op of ['conv', 'convTranspose', 'maxPool', 'avgPool', 'adaptiveAvgPool', 'channelAffine'])
      expect(ops.has(op), op).toBe(true);
    for (const op of ['instanceNorm', 'padImage', 'resize', 'cropImage', 'concat', 'slice', 'clip'])
      expect(ops.has(op), op).toBe(true);
    for (const op of ['leakyRelu', 'elu', 'sigmoid', 'tanh', 'softmax']) expect(ops.has(op), op).toBe(true);
  });

  for (const engineName of ENGINES) {
    describe(engineName, () => {
      let engine: ModelEngine;
      beforeAll(async () => {
        engine = await testEngine(engineName);
      });
      afterAll(async () => {
        await engine.dispose();
      });

      for (const c of cases) {
        it(`${c.op} ${c.name}`, async () => {
          const params = new ParamStore();
          for (const key of PARAMS.filter((k) => has(`${c.name}.${k}`))) {
            params.declare(key, io.info(`${c.name}.${key}`).shape);
            params.setFromTorch(key, await io.readFloat32(`${c.name}.${key}`));
          }
          const inputs: tf.Tensor4D[] = [];
          for (const key of INPUTS.filter((k) => has(`${c.name}.${k}`)))
            inputs.push(
              nchwToNhwc(await io.readFloat32(`${c.name}.${key}`), io.info(`${c.name}.${key}`).shape),
            );
          const net: Network = {
            kind: `ops-${c.name}`,
            params,
            forward: (ops, xs) => [apply(ops, c, xs, params)],
          };
          const [out] = await engine.runNetwork(net, inputs);
          const imageOut = ![
            'concat',
            'slice',
            'clip',
            'leakyRelu',
            'elu',
            'sigmoid',
            'tanh',
            'softmax',
          ].includes(c.op);
          const actual = tf.tidy(() => (imageOut ? out!.transpose([0, 3, 1, 2]) : out!));
          const expected = io.info(`${c.name}.y`).shape;
          try {
            expect(actual.shape).toEqual(expected);
            const error = relativeError(
              actual.dataSync() as Float32Array,
              await io.readFloat32(`${c.name}.y`),
            );
            expect(error).toBeLessThan(1e-5);
          } finally {
            tf.dispose([out!, actual, ...inputs]);
            params.dispose();
          }
        });
      }
    });
  }
});
