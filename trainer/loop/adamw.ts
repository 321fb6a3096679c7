/**
 * AdamW (decoupled weight decay, bias-corrected moments) over TF.js
 * variables, with fp32 moment state that can be exported and re-imported
 * bit-exactly for resume. The update follows PyTorch's `torch.optim.AdamW`:
 *
 *   p <- p * (1 - lr * wd)                       (decay only matrices, see below)
 *   m <- b1 * m + (1 - b1) * g
 *   v <- b2 * v + (1 - b2) * g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * Weight decay skips rank<=1 tensors (norm scales, biases), as Hugging Face's
 * Trainer does by name; deciding by rank keeps it independent of naming.
 * Written by hand because TF.js ships Adam without decoupled decay and its
 * optimizer state cannot be exported in a form we can verify bitwise.
 */
import { tf } from "../runtime.ts";
import { adamwUpdate } from "../model/ops.ts";

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** One moment tensor in plain form: what `optimizer.safetensors` holds. */
export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

export class AdamW {
  /** Completed updates (the `t` of bias correction). */
  step = 0;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();

  private keys: string[];

  /**
   * `stateNames` (default: the variables' names) are the keys of the saved
   * state, so a checkpoint stays loadable when TF.js variable names are not
   * stable across processes (TF.js requires globally unique names).
   */
  constructor(
    readonly params: tf.Variable[],
    readonly opts: AdamWOptions,
    stateNames?: string[],
  ) {
    this.keys = stateNames ?? params.map((p) => p.name);
    if (this.keys.length !== params.length) {
      throw new Error("AdamW: one state name per parameter is required");
    }
    const seen = new Set<string>();
    for (const [i, p] of params.entries()) {
      if (seen.has(this.keys[i])) {
        throw new Error(`AdamW: two parameters are both named ${this.keys[i]}`);
      }
      seen.add(this.keys[i]);
      if (p.dtype !== "float32") {
        throw new Error(
          `AdamW: parameter ${p.name} is ${p.dtype}; only float32 is trained`,
        );
      }
      // tidy frees the zero tensors the variables were initialised from
      this.m.set(p.name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(p.name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** Apply one update with learning rate `lr`; `grads` is keyed by variable name. */
  apply(grads: Record<string, tf.Tensor>, lr: number): void {
    const { beta1: b1, beta2: b2, epsilon, weightDecay } = this.opts;
    const t = this.step + 1;
    const bc1 = 1 - Math.pow(b1, t);
    const bc2 = 1 - Math.pow(b2, t);
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    for (const p of this.params) {
      const g = grads[p.name];
      if (!g) {
        throw new Error(`AdamW: no gradient for parameter ${p.name}`);
      }
      const m = this.m.get(p.name)!;
      const v = this.v.get(p.name)!;
      tf.tidy(() => {
        const decay = p.rank >= 2 ? weightDecay : 0;
        // one fused pass on the blas backend (model/ops.ts)
        const [p1, m1, v1] = adamwUpdate(p, g, m, v, {
          beta1: b1,
          beta2: b2,
          epsilon,
          decay: decay > 0 ? 1 - lr * decay : 1,
          stepSize,
          sqrtBc2,
        });
        m.assign(m1);
        v.assign(v1);
        p.assign(p1);
      });
    }
    this.step = t;
  }

  /** Moments as plain arrays, keyed `<state name>.exp_avg` / `.exp_avg_sq`. */
  exportState(): Map<string, StateTensor> {
    const out = new Map<string, StateTensor>();
    this.params.forEach((p, i) => {
      for (const [suffix, src] of this.moments()) {
        const t = src.get(p.name)!;
        out.set(`${this.keys[i]}.${suffix}`, {
          shape: [...t.shape],
          data: t.dataSync() as Float32Array,
        });
      }
    });
    return out;
  }

  /** Restore `exportState()` plus the step count; every key must match exactly. */
  importState(state: Map<string, StateTensor>, step: number): void {
    const expected = new Set<string>();
    const problems: string[] = [];
    this.params.forEach((p, i) => {
      for (const [suffix, dst] of this.moments()) {
        const key = `${this.keys[i]}.${suffix}`;
        expected.add(key);
        const s = state.get(key);
        if (!s) {
          problems.push(`missing ${key}`);
        } else if (s.shape.join(",") !== p.shape.join(",")) {
          problems.push(
            `${key} has shape [${s.shape}] but the parameter is [${p.shape}]`,
          );
        } else {
          tf.tidy(() =>
            dst.get(p.name)!.assign(tf.tensor(s.data, p.shape, "float32"))
          );
        }
      }
    });
    for (const k of state.keys()) {
      if (!expected.has(k)) problems.push(`unexpected ${k}`);
    }
    if (problems.length) {
      throw new Error(
        `optimizer state does not match the model: ${
          problems.slice(0, 4).join("; ")
        }${problems.length > 4 ? `; and ${problems.length - 4} more` : ""}`,
      );
    }
    this.step = step;
  }

  private moments(): [string, Map<string, tf.Variable>][] {
    return [["exp_avg", this.m], ["exp_avg_sq", this.v]];
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}
