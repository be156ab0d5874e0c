import type { Network, NetworkOutput } from '../../engine/network.ts';
import type { Ops } from '../../engine/ops.ts';
import { ParamStore } from '../../models/params.ts';

/** A conv layer of the OpenPose VGG/CPM stacks: [name, in, out, kernel] (stride 1, padding kernel // 2), or a 2x2 pool. */
type Layer = readonly [string, number, number, number] | 'pool';

/** The VGG-19 layers every OpenPose network starts with, up to conv4_2. */
const VGG_FRONT: readonly Layer[] = [
  ['conv1_1', 3, 64, 3],
  ['conv1_2', 64, 64, 3],
  'pool',
  ['conv2_1', 64, 128, 3],
  ['conv2_2', 128, 128, 3],
  'pool',
  ['conv3_1', 128, 256, 3],
  ['conv3_2', 256, 256, 3],
  ['conv3_3', 256, 256, 3],
  ['conv3_4', 256, 256, 3],
  'pool',
  ['conv4_1', 256, 512, 3],
  ['conv4_2', 512, 512, 3],
];

/** VGG-19 front of body_pose_model (model0) up to conv4_4_CPM. */
const BODY_FRONT: readonly Layer[] = [
  ...VGG_FRONT,
  ['conv4_3_CPM', 512, 256, 3],
  ['conv4_4_CPM', 256, 128, 3],
];

/** VGG front shared by hand_pose_model (model1_0) and FaceNet, up to conv5_3_CPM. */
const HAND_FACE_FRONT: readonly Layer[] = [
  ...VGG_FRONT,
  ['conv4_3', 512, 512, 3],
  ['conv4_4', 512, 512, 3],
  ['conv5_1', 512, 512, 3],
  ['conv5_2', 512, 512, 3],
  ['conv5_3_CPM', 512, 128, 3],
];

/** Stages 2..6 of a CPM: five 7x7 convs, a 1x1 and the 1x1 output (`suffix` e.g. `_L1`). */
function refineStage(stage: number, cin: number, cout: number, suffix = ''): Layer[] {
  const n = (i: number) => `Mconv${i}_stage${stage}${suffix}`;
  return [
    [n(1), cin, 128, 7],
    [n(2), 128, 128, 7],
    [n(3), 128, 128, 7],
    [n(4), 128, 128, 7],
    [n(5), 128, 128, 7],
    [n(6), 128, 128, 1],
    [n(7), 128, cout, 1],
  ];
}

/** A sequence of layers (checkpoint names as the `.pth` holds them) with ReLU after every conv but `noRelu`. */
class Stack {
  constructor(
    readonly layers: readonly Layer[],
    private readonly noRelu: ReadonlySet<string>,
  ) {}

  declare(params: ParamStore): void {
    for (const l of this.layers) {
      if (l === 'pool') continue;
      const [name, cin, cout, k] = l;
      params.declare(`${name}.weight`, [cout, cin, k, k]);
      params.declare(`${name}.bias`, [cout]);
    }
  }

  run<T>(ops: Ops<T>, params: ParamStore, x: T): T {
    let h = x;
    for (const l of this.layers) {
      if (l === 'pool') {
        h = ops.maxPool(h, 2, 2);
        continue;
      }
      const [name, , , k] = l;
      h = ops.conv(h, params.get(`${name}.weight`), params.get(`${name}.bias`), { pad: (k - 1) / 2 });
      if (!this.noRelu.has(name)) h = ops.relu(h);
    }
    return h;
  }
}

/**
 * body_pose_model (annotator/openpose/model.py, checkpoint body_pose_model.pth): input BGR/256 - 0.5, NHWC;
 * outputs [PAFs (38 channels, Mconv7_stage6_L1), heatmaps (19, Mconv7_stage6_L2)] at 1/8 scale. The original's
 * no-ReLU list names Mconv7_stage6_L1 twice and never Mconv7_stage6_L2, so the heatmap output is ReLU'd; kept.
 */
export class BodyNetwork implements Network {
  readonly kind = 'openpose-body';
  readonly params = new ParamStore();
  private readonly front: Stack;
  private readonly stages: [Stack, Stack][] = [];

  constructor() {
    const noRelu = new Set(['conv5_5_CPM_L1', 'conv5_5_CPM_L2', 'Mconv7_stage6_L1']);
    for (let s = 2; s <= 5; s++) for (const l of ['L1', 'L2']) noRelu.add(`Mconv7_stage${s}_${l}`);
    this.front = new Stack(BODY_FRONT, noRelu);
    const stage1 = (l: string, cout: number): Layer[] => [
      [`conv5_1_CPM_${l}`, 128, 128, 3],
      [`conv5_2_CPM_${l}`, 128, 128, 3],
      [`conv5_3_CPM_${l}`, 128, 128, 3],
      [`conv5_4_CPM_${l}`, 128, 512, 1],
      [`conv5_5_CPM_${l}`, 512, cout, 1],
    ];
    this.stages.push([new Stack(stage1('L1', 38), noRelu), new Stack(stage1('L2', 19), noRelu)]);
    for (let s = 2; s <= 6; s++) {
      this.stages.push([
        new Stack(refineStage(s, 185, 38, '_L1'), noRelu),
        new Stack(refineStage(s, 185, 19, '_L2'), noRelu),
      ]);
    }
    this.front.declare(this.params);
    for (const [a, b] of this.stages) {
      a.declare(this.params);
      b.declare(this.params);
    }
  }

  forward<T>(ops: Ops<T>, [x]: T[]): NetworkOutput<T>[] {
    const features = this.front.run(ops, this.params, x!);
    let input = features;
    let out: [T, T] | undefined;
    for (const [l1, l2] of this.stages) {
      out = [l1.run(ops, this.params, input), l2.run(ops, this.params, input)];
      input = ops.concatChannels([out[0], out[1], features]);
    }
    return out!.map((value) => ({ value, image: true }));
  }

  dispose(): void {
    this.params.dispose();
  }
}

/**
 * The single-branch CPM of handpose_model (checkpoint hand_pose_model.pth, 22 heatmaps) and FaceNet (face.py,
 * facenet.pth, 71 heatmaps): VGG front to conv5_3_CPM, stage 1 (conv6_1_CPM, conv6_2_CPM), stages 2..6 on
 * [previous output, features]. Input BGR/256 - 0.5, NHWC; output the last stage's heatmaps at 1/8 scale.
 */
export class CpmNetwork implements Network {
  readonly params = new ParamStore();
  private readonly front: Stack;
  private readonly stages: Stack[] = [];

  constructor(
    readonly kind: 'openpose-hand' | 'openpose-face',
    outputs: number,
  ) {
    const noRelu = new Set(['conv6_2_CPM']);
    for (let s = 2; s <= 6; s++) noRelu.add(`Mconv7_stage${s}`);
    this.front = new Stack(HAND_FACE_FRONT, noRelu);
    const stage1: Layer[] = [
      ['conv6_1_CPM', 128, 512, 1],
      ['conv6_2_CPM', 512, outputs, 1],
    ];
    this.stages.push(new Stack(stage1, noRelu));
    for (let s = 2; s <= 6; s++) this.stages.push(new Stack(refineStage(s, outputs + 128, outputs), noRelu));
    this.front.declare(this.params);
    for (const s of this.stages) s.declare(this.params);
  }

  forward<T>(ops: Ops<T>, [x]: T[]): NetworkOutput<T>[] {
    const features = this.front.run(ops, this.params, x!);
    let h = this.stages[0]!.run(ops, this.params, features);
    for (const stage of this.stages.slice(1))
      h = stage.run(ops, this.params, ops.concatChannels([h, features]));
    return [{ value: h, image: true }];
  }

  dispose(): void {
    this.params.dispose();
  }
}
