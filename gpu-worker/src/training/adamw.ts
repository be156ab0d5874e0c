import * as tf from '@tensorflow/tfjs';

/** A set of variables trained at one learning rate. */
export interface ParamGroup {
  variables: tf.Variable[];
  learningRate: number;
}

/** AdamW hyper-parameters (torch.optim.AdamW defaults except the learning rate, which each group sets). */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
}

/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with per-group learning rates, as torch.optim.AdamW steps.
 * tfjs's `tf.train.adam` has neither decoupled decay nor groups, which `--sd-locked false` needs.
 */
export class AdamW {
  private readonly moments = new Map<tf.Variable, { m: tf.Variable; v: tf.Variable }>();
  private step = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weightDecay: number;

  constructor(
    readonly groups: ParamGroup[],
    options: AdamWOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    for (const group of groups) {
      for (const variable of group.variables) {
        this.moments.set(variable, {
          m: tf.variable(tf.zerosLike(variable), false),
          v: tf.variable(tf.zerosLike(variable), false),
        });
      }
    }
  }

  /** Every trained variable, all groups. */
  get variables(): tf.Variable[] {
    return this.groups.flatMap((g) => g.variables);
  }

  /** Applies one update from gradients keyed by variable name (missing ones are skipped). */
  apply(grads: tf.NamedTensorMap): void {
    this.step++;
    const correction1 = 1 - this.beta1 ** this.step;
    const correction2 = 1 - this.beta2 ** this.step;
    for (const group of this.groups) {
      const lr = group.learningRate;
      for (const variable of group.variables) {
        const grad = grads[variable.name];
        if (!grad) continue;
        const { m, v } = this.moments.get(variable)!;
        tf.tidy(() => {
          m.assign(m.mul(this.beta1).add(grad.mul(1 - this.beta1)));
          v.assign(v.mul(this.beta2).add(grad.square().mul(1 - this.beta2)));
          const update = m
            .div(correction1)
            .div(v.div(correction2).sqrt().add(this.epsilon))
            .add(variable.mul(this.weightDecay));
          variable.assign(variable.sub(update.mul(lr)));
        });
      }
    }
  }

  /** Frees the moment estimates. */
  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/** Sums gradients of micro-batches; `mean()` gives the accumulated gradient for one optimizer step. */
export class GradientAccumulator {
  private sums: tf.NamedTensorMap = {};
  private count = 0;

  /** Adds one micro-batch's gradients (takes ownership of them). */
  add(grads: tf.NamedTensorMap): void {
    for (const [name, grad] of Object.entries(grads)) {
      const previous = this.sums[name];
      if (previous) {
        this.sums[name] = tf.keep(previous.add(grad));
        tf.dispose([previous, grad]);
      } else {
        this.sums[name] = grad;
      }
    }
    this.count++;
  }

  /** Number of micro-batches added since the last reset. */
  get size(): number {
    return this.count;
  }

  /** The mean gradient; the accumulator is reset and the caller owns the result. */
  takeMean(): tf.NamedTensorMap {
    const out: tf.NamedTensorMap = {};
    for (const [name, sum] of Object.entries(this.sums)) {
      out[name] = this.count === 1 ? sum : tf.keep(sum.div(this.count));
      if (this.count !== 1) sum.dispose();
    }
    this.sums = {};
    this.count = 0;
    return out;
  }
}
