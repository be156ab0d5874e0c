import type { Ops } from '../engine/ops.ts';
import type { ParamStore } from './params.ts';

export { attentionStrategy, flopCounter, scaledDotProductAttention } from '../engine/tf-ops.ts';

/** A layer's forward pass over images, on any backend's {@link Ops}. */
export interface Layer4D {
  forward<T>(o: Ops<T>, x: T): T;
}

/** Conv2d with PyTorch semantics (symmetric explicit padding), weights `name.weight` / `name.bias`. */
export class Conv2d implements Layer4D {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inChannels: number,
    outChannels: number,
    kernel: number,
    private readonly stride = 1,
    private readonly padding = kernel === 3 ? 1 : 0,
  ) {
    this.weight = params.declare(`${name}.weight`, [outChannels, inChannels, kernel, kernel]);
    this.bias = params.declare(`${name}.bias`, [outChannels]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.conv2d(x, this.params.get(this.weight), this.params.get(this.bias), this.stride, this.padding);
  }
}

/** Linear layer over the last axis (any rank), weights `name.weight` [out, in] and optional `name.bias`. */
export class Linear {
  private readonly weight: string;
  private readonly bias: string | undefined;
  constructor(
    private readonly params: ParamStore,
    name: string,
    inFeatures: number,
    outFeatures: number,
    hasBias = true,
  ) {
    this.weight = params.declare(`${name}.weight`, [outFeatures, inFeatures]);
    this.bias = hasBias ? params.declare(`${name}.bias`, [outFeatures]) : undefined;
  }

  /** The output split into `parts` along the last axis. */
  forwardSplit<T>(o: Ops<T>, x: T, parts: number): T[] {
    return o.linearSplit(
      x,
      this.params.get(this.weight),
      this.bias === undefined ? undefined : this.params.get(this.bias),
      parts,
    );
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.linear(
      x,
      this.params.get(this.weight),
      this.bias === undefined ? undefined : this.params.get(this.bias),
    );
  }
}

/** GroupNorm over images. */
export class GroupNorm implements Layer4D {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    channels: number,
    private readonly eps: number,
    private readonly groups = 32,
  ) {
    this.weight = params.declare(`${name}.weight`, [channels]);
    this.bias = params.declare(`${name}.bias`, [channels]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.groupNorm(x, this.params.get(this.weight), this.params.get(this.bias), this.groups, this.eps);
  }
}

/** LayerNorm over the last axis. */
export class LayerNorm {
  private readonly weight: string;
  private readonly bias: string;
  constructor(
    private readonly params: ParamStore,
    name: string,
    channels: number,
    private readonly eps = 1e-5,
  ) {
    this.weight = params.declare(`${name}.weight`, [channels]);
    this.bias = params.declare(`${name}.bias`, [channels]);
  }

  forward<T>(o: Ops<T>, x: T): T {
    return o.layerNorm(x, this.params.get(this.weight), this.params.get(this.bias), this.eps);
  }
}
