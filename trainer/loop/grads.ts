/**
 * Gradient accumulation and global-norm clipping.
 *
 * Averaging is per micro-batch: each micro-batch's loss is already a mean
 * over its own supervised tokens, and the window's gradient is the plain
 * mean of the micro-batch gradients (sum / window size), as Hugging Face's
 * Trainer does by dividing each micro-batch loss by the accumulation steps.
 */
import { tf } from "../runtime.ts";

/** Sums micro-batch gradients; `mean()` hands back sum / count. */
export class GradAccumulator {
  private sum = new Map<string, tf.Tensor>();
  private count = 0;

  /** Adds one micro-batch's gradients (takes ownership of `grads`). */
  add(grads: Record<string, tf.Tensor>): void {
    for (const [k, g] of Object.entries(grads)) {
      const prev = this.sum.get(k);
      if (prev) {
        this.sum.set(k, tf.keep(prev.add(g)));
        prev.dispose();
        g.dispose();
      } else {
        this.sum.set(k, tf.keep(g));
      }
    }
    this.count++;
  }

  get size(): number {
    return this.count;
  }

  /** The averaged gradients; the accumulator is empty afterwards. */
  mean(): Record<string, tf.Tensor> {
    if (this.count === 0) throw new Error("no gradients were accumulated");
    const out: Record<string, tf.Tensor> = {};
    for (const [k, g] of this.sum) {
      out[k] = this.count === 1 ? g : tf.keep(g.div(this.count));
      if (this.count !== 1) g.dispose();
    }
    this.sum.clear();
    this.count = 0;
    return out;
  }
}

/**
 * Global L2 norm over all gradients, and in-place scaling by
 * `maxNorm / (norm + 1e-6)` when that is below 1 (PyTorch's
 * `clip_grad_norm_`). `maxNorm <= 0` disables clipping. Returns the norm
 * before clipping.
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number,
): number {
  const keys = Object.keys(grads).sort();
  const norm = tf.tidy(() => {
    let total: tf.Tensor = tf.scalar(0);
    for (const k of keys) total = total.add(grads[k].square().sum());
    return total.sqrt();
  });
  const value = norm.dataSync()[0];
  norm.dispose();
  if (maxNorm > 0 && Number.isFinite(value)) {
    const coef = maxNorm / (value + 1e-6);
    if (coef < 1) {
      for (const k of keys) {
        const scaled = tf.keep(grads[k].mul(coef));
        grads[k].dispose();
        grads[k] = scaled;
      }
    }
  }
  return value;
}
