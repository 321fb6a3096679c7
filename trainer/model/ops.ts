/**
 * Differentiable building blocks whose forward AND backward run fast on
 * both compute paths: on the `blas` backend they are plain TF.js matmuls
 * (BLAS takes the transpose flags) and the fused kernels of
 * backend/fused_kernels.ts; on the wasm backend they are composites shaped
 * for its kernels, as follows.
 *
 * Why custom gradients: the wasm `BatchMatMul` kernel takes its XNNPACK fast
 * path only for rank-2 (batch 1) products without transpose flags; with
 * `transposeA`/`transposeB` or a batch > 1 it falls back to a naive loop that
 * is 10-20x slower (measured: 20 vs 1.7 GFLOP/s). TF.js's own matMul gradient
 * uses the transpose flags, so `mm` below transposes explicitly instead.
 * The wasm backend also lacks `UnsortedSegmentSum`, the gradient of
 * `tf.gather`; the row gathers here are injective, so their gradients are
 * plain gathers/masks (or a one-hot matmul for the embedding table).
 */
import { tf } from "../runtime.ts";
import {
  type AttentionBlock,
  fusedAvailable,
  type QkPrepAttrs,
  runFused,
} from "../backend/fused_kernels.ts";

export { fusedAvailable };

/** Run a fused kernel and keep only its first output (the rest is saved state). */
function fused(
  name: string,
  inputs: tf.NamedTensorMap,
  attrs: object = {},
): tf.Tensor {
  const [y, ...rest] = runFused(name, inputs, attrs);
  // the tape keeps its own references to the saved outputs
  for (const t of rest) t.dispose();
  return y;
}

/** a [M, K] @ b [K, N] -> [M, N], with a backward that stays on the fast path. */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  // outside a gradient tape the custom-gradient wrapper is pure overhead;
  // BLAS runs TF.js's own gradient (transpose flags) at full speed
  if (!recording() || fusedAvailable()) return tf.matMul(a, b);
  return mmGrad(a, b) as tf.Tensor2D;
}

/** True while a gradient tape (tf.grads / tf.variableGrads) is recording. */
export function recording(): boolean {
  // the engine's own isTapeOn() test (not part of its typed API)
  const st = tf.engine().state;
  return st.gradientDepth > 0 &&
    (st as unknown as { kernelDepth: number }).kernelDepth === 0;
}

// tf.customGrad's typing passes inputs and the save function as one rest array
type GradArg = tf.Tensor | tf.GradSaveFunc;

/**
 * Runs a custom gradient body in its own tidy scope. TF.js calls custom
 * gradient functions outside any scope of their own, so their temporaries
 * (transposes, one-hot matrices) would otherwise live until the whole
 * backward pass ends and raise its peak memory.
 */
function backwardTidy<T extends tf.Tensor | tf.Tensor[]>(f: () => T): T {
  return tf.tidy(f);
}

const mmGrad = tf.customGrad((...args: GradArg[]) => {
  const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
      backwardTidy(() => {
        const [sa, sb] = saved as tf.Tensor2D[];
        const dy2 = dy as tf.Tensor2D;
        const [m, k] = sa.shape, n = sb.shape[1];
        // db = a^T @ dy, or (dy^T @ a)^T when transposing dy and the small
        // result moves fewer elements than transposing a (attention
        // probabilities, wide MLP activations): transposes cost ~15% of a step
        const db = m * k <= m * n + k * n
          ? tf.matMul(tf.transpose(sa), dy2)
          : tf.transpose(tf.matMul(tf.transpose(dy2), sa));
        return [tf.matMul(dy2, tf.transpose(sb)), db];
      }),
  };
});

/**
 * a [M, K] @ c [K, N] where `c` is a constant (no gradient wanted, e.g. the
 * rotate-half matrix): the backward skips the weight-gradient product and
 * its transposes. `cT` = c transposed, supplied by the caller so it is
 * built once.
 */
export function mmConstRight(
  a: tf.Tensor2D,
  c: tf.Tensor2D,
  cT: tf.Tensor2D,
): tf.Tensor2D {
  if (!recording() || fusedAvailable()) return tf.matMul(a, c);
  const f = tf.customGrad((...args: GradArg[]) => {
    // saved: cT may be released by the caller's scope before the backward
    (args[1] as tf.GradSaveFunc)([cT]);
    return {
      value: tf.matMul(args[0] as tf.Tensor2D, c),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.matMul(dy as tf.Tensor2D, saved[0] as tf.Tensor2D),
    };
  });
  return f(a) as tf.Tensor2D;
}

/**
 * c [M, K] @ b [K, N] where the left operand `c` is a constant (pixel values,
 * the position-interpolation matrix): only b's gradient c^T @ dy is built.
 */
export function mmConstLeft(c: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (!recording() || fusedAvailable()) return tf.matMul(c, b);
  const f = tf.customGrad((...args: GradArg[]) => {
    const save = args[1] as tf.GradSaveFunc;
    // saved tensors outlive the caller's tf.tidy; `c` itself may not
    save([tf.transpose(c)]);
    return {
      value: tf.matMul(c, args[0] as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.matMul(saved[0] as tf.Tensor2D, dy as tf.Tensor2D),
    };
  });
  return f(b) as tf.Tensor2D;
}

/** x [..., K] @ w [K, N] (+ bias [N]) over the flattened leading axes. */
export function linear(
  x: tf.Tensor,
  w: tf.Tensor2D,
  bias?: tf.Tensor1D,
): tf.Tensor {
  const k = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  let y: tf.Tensor = mm(tf.reshape(x, [-1, k]) as tf.Tensor2D, w);
  if (bias) y = tf.add(y, bias);
  return tf.reshape(y, [...lead, w.shape[1]]);
}

/**
 * RMSNorm over the last axis (HF `Qwen3VLTextRMSNorm`, float32 throughout);
 * `weight` null leaves the scale to the caller (folded into a matmul).
 */
export function rmsNorm(
  x: tf.Tensor,
  weight: tf.Tensor | null,
  eps: number,
): tf.Tensor {
  if (fusedAvailable()) {
    const d = x.shape[x.shape.length - 1];
    return tf.tidy(() =>
      fused("Stage2RmsNorm", { x, w: weight ?? tf.ones([d]) }, { eps })
    );
  }
  const variance = tf.mean(tf.square(x), -1, true);
  const n = tf.mul(x, tf.rsqrt(tf.add(variance, eps)));
  return weight ? tf.mul(n, weight) : n;
}

/**
 * h = x + res and RMSNorm(h) * weight in one pass (the residual stream and
 * the next norm): one fused kernel on the blas path, whose backward adds the
 * residual stream's gradient into the norm's.
 */
export function addRmsNorm(
  x: tf.Tensor,
  res: tf.Tensor,
  weight: tf.Tensor,
  eps: number,
): { h: tf.Tensor; y: tf.Tensor } {
  if (fusedAvailable()) {
    const [h, y, rstd] = runFused("Stage2AddRmsNorm", { x, res, w: weight }, {
      eps,
    });
    rstd.dispose();
    return { h, y };
  }
  const h = tf.add(x, res);
  return { h, y: rmsNorm(h, weight, eps) };
}

/**
 * x [N, K] @ w_i [K, n_i] for two or three weights sharing the input (q/k/v,
 * gate/up): on the blas path one kernel whose backward sums the input's
 * gradient in one accumulating pass instead of adding per-product results.
 */
export function matMulShared(x: tf.Tensor2D, ws: tf.Tensor2D[]): tf.Tensor2D[] {
  if (fusedAvailable() && (ws.length === 2 || ws.length === 3)) {
    const inputs: tf.NamedTensorMap = { x };
    ws.forEach((w, i) => (inputs[`w${i}`] = w));
    return runFused(`Stage2MatMul${ws.length}`, inputs) as tf.Tensor2D[];
  }
  return ws.map((w) => mm(x, w));
}

/** res + a [N, K] @ w [K, n] (the residual add folded into the product on the blas path). */
export function addMatMul(
  res: tf.Tensor2D,
  a: tf.Tensor2D,
  w: tf.Tensor2D,
): tf.Tensor2D {
  if (fusedAvailable()) {
    return fused("Stage2AddMatMul", { res, a, w }) as tf.Tensor2D;
  }
  return tf.add(res, mm(a, w));
}

/** LayerNorm over the last axis (torch `nn.LayerNorm`, biased variance). */
export function layerNorm(
  x: tf.Tensor,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  eps: number,
): tf.Tensor {
  if (fusedAvailable()) {
    return fused("Stage2LayerNorm", { x, w: weight, b: bias }, { eps });
  }
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(
    tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), weight),
    bias,
  );
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** Activation by HF name: `silu`, `gelu_pytorch_tanh`, `gelu` (exact, erf). */
export function activation(name: string, x: tf.Tensor): tf.Tensor {
  switch (name) {
    case "silu":
      return tf.mul(x, tf.sigmoid(x));
    case "gelu_pytorch_tanh": {
      if (fusedAvailable()) return fused("Stage2GeluTanh", { x });
      const inner = tf.mul(
        tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)),
        SQRT_2_OVER_PI,
      );
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
    }
    case "gelu":
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
    default:
      throw new Error(`unsupported activation "${name}"`);
  }
}

/** SwiGLU's product act(g) * u, g and u [N, I] (one fused kernel for silu). */
export function gatedActivation(
  name: string,
  g: tf.Tensor,
  u: tf.Tensor,
): tf.Tensor {
  if (name === "silu" && fusedAvailable()) {
    return fused("Stage2SwiGlu", { g, u });
  }
  return tf.tidy(() => tf.mul(activation(name, g), u));
}

/**
 * Weighted negative log-likelihood `-sum(weights * logSoftmax(logits))` of
 * logits [N, V] with per-entry weights [N, V] (one-hot targets times the
 * token weights): the CE numerator of the training losses. One fused kernel
 * on the blas path (the gradient is `softmax * rowsum(weights) - weights`).
 *
 * @example
 * const nll = weightedNll(logits2d, targets2d); // scalar
 */
export function weightedNll(
  logits: tf.Tensor2D,
  weights: tf.Tensor2D,
): tf.Scalar {
  if (fusedAvailable()) {
    return fused("Stage2WeightedNll", { logits, weights }) as tf.Scalar;
  }
  return tf.tidy(() =>
    tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), weights))) as tf.Scalar
  );
}

export interface AdamWStep {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 - lr * weight_decay for decayed parameters, else 1. */
  decay: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  sqrtBc2: number;
}

/**
 * One AdamW update of parameter p with gradient g and moments m, v ->
 * [p1, m1, v1] (the formulas of trainer/loop/adamw.ts): one fused pass on
 * the blas path (in double precision, rounded once), the same ops as before
 * elsewhere.
 */
export function adamwUpdate(
  p: tf.Tensor,
  g: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  s: AdamWStep,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (fusedAvailable()) {
    return runFused("Stage2AdamW", { p, g, m, v }, {
      b1: s.beta1,
      b2: s.beta2,
      eps: s.epsilon,
      decay: s.decay,
      step: s.stepSize,
      sqrtBc2: s.sqrtBc2,
    }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  }
  return tf.tidy(() => {
    const decayed = s.decay !== 1 ? p.mul(s.decay) : p;
    const m1 = m.mul(s.beta1).add(g.mul(1 - s.beta1));
    const v1 = v.mul(s.beta2).add(g.square().mul(1 - s.beta2));
    const denom = v1.sqrt().div(s.sqrtBc2).add(s.epsilon);
    const p1 = decayed.sub(m1.div(denom).mul(s.stepSize));
    return [p1, m1, v1] as [tf.Tensor, tf.Tensor, tf.Tensor];
  });
}

/**
 * Blas path only: per-head RMSNorm of q and k (weights qw, kw [hd]; pass
 * null for none), rotary embedding with cos, sin [B*T, hd], q scaled by
 * `attrs.scale`, and the attention layouts: q [B*T, nH hd] -> q [B*T, nH hd],
 * k, v [B*T, nKV hd] -> kT [B, nKV, hd, T], v [B, nKV, T, hd].
 */
export function qkPrep(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  cos: tf.Tensor2D,
  sin: tf.Tensor2D,
  norm: { qw: tf.Tensor1D; kw: tf.Tensor1D } | null,
  attrs: QkPrepAttrs,
): { q: tf.Tensor2D; kT: tf.Tensor4D; v: tf.Tensor4D } {
  const outs = norm
    ? runFused(
      "Stage2QkPrep",
      { q, k, v, cos, sin, qw: norm.qw, kw: norm.kw },
      attrs,
    )
    : runFused("Stage2RopePrep", { q, k, v, cos, sin }, attrs);
  for (const t of outs.slice(3)) t.dispose();
  return {
    q: outs[0] as tf.Tensor2D,
    kT: outs[1] as tf.Tensor4D,
    v: outs[2] as tf.Tensor4D,
  };
}

/**
 * Blas path only: attention of q [B*T, nH hd] (scaled, rotated) over
 * kT [B, nKV, hd, Tk] and v [B, nKV, Tk, hd], block by block
 * -> [B*T, nH hd].
 */
export function blockAttention(
  q: tf.Tensor2D,
  kT: tf.Tensor4D,
  v: tf.Tensor4D,
  blocks: AttentionBlock[],
  nH: number,
  T: number,
): tf.Tensor2D {
  const [, nKV, hd] = kT.shape;
  return fused("Stage2Attention", { q, kT, v }, {
    blocks,
    nH,
    nKV,
    hd,
    T,
  }) as tf.Tensor2D;
}

/**
 * Embedding lookup table [V, H], ids [N] -> [N, H]. Forward is an exact row
 * gather; the table gradient is onehot(ids)^T @ dy, a matmul the wasm
 * backend can run (it has no scatter-add kernel).
 */
export function embeddingLookup(
  table: tf.Tensor2D,
  ids: Int32Array,
): tf.Tensor2D {
  const vocab = table.shape[0];
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) {
      throw new RangeError(
        `token id ${
          ids[i]
        } at flat position ${i} is outside the vocabulary [0, ${vocab})`,
      );
    }
  }
  if (!recording() || fusedAvailable()) {
    // the blas backend runs gather's own gradient (a scatter-add)
    return tf.tidy(() => tf.gather(table, tf.tensor1d(ids, "int32")));
  }
  // ids travel as a JS array so the backward does not depend on a tensor
  // that a surrounding tf.tidy may already have released
  const f = tf.customGrad((...args: GradArg[]) => ({
    value: tf.tidy(() =>
      tf.gather(args[0] as tf.Tensor, tf.tensor1d(ids, "int32"))
    ),
    gradFunc: (dy: tf.Tensor) =>
      backwardTidy(() => {
        // Cast instead of oneHot's dtype argument: the wasm kernel writes
        // int32 bit patterns into a float32 buffer (1 reads as 1.4e-45),
        // which silently zeroed every input-embedding gradient.
        const oneHot = tf.cast(
          tf.oneHot(tf.tensor1d(ids, "int32"), vocab),
          "float32",
        );
        return tf.matMul(
          tf.transpose(oneHot) as tf.Tensor2D,
          dy as tf.Tensor2D,
        ); // [V, H]
      }),
  }));
  return f(table) as tf.Tensor2D;
}

/**
 * Rows of `base` [R, H] at `rows` (distinct indices, in order) replaced by
 * (mode "replace") or increased by (mode "add") the rows of `src` [N, H].
 * Replaced rows are exact copies of `src` (bitwise). Because every index is
 * used once, both gradients are gathers: no scatter-add is needed.
 */
export function scatterRows(
  base: tf.Tensor2D,
  src: tf.Tensor2D,
  rows: Int32Array,
  mode: "replace" | "add",
): tf.Tensor2D {
  const r = base.shape[0];
  if (src.shape[0] !== rows.length) {
    throw new Error(
      `scatterRows: ${src.shape[0]} source rows for ${rows.length} target rows`,
    );
  }
  const idx = new Int32Array(r);
  const keep = new Float32Array(r).fill(1);
  for (let i = 0; i < r; i++) idx[i] = mode === "replace" ? i : 0;
  rows.forEach((row, k) => {
    idx[row] = mode === "replace" ? r + k : k + 1;
    keep[row] = 0;
  });
  const f = tf.customGrad((...args: GradArg[]) => {
    const [b, s] = args as [tf.Tensor, tf.Tensor];
    const value = tf.tidy(() => {
      const idxT = tf.tensor1d(idx, "int32");
      if (mode === "replace") return tf.gather(tf.concat([b, s], 0), idxT);
      const padded = tf.concat([tf.zeros([1, b.shape[1]!]), s], 0);
      return tf.add(b, tf.gather(padded, idxT));
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor) =>
        backwardTidy(() => {
          const rowsT = tf.tensor1d(rows, "int32");
          const dSrc = tf.gather(dy, rowsT);
          const dBase = mode === "replace"
            ? tf.mul(dy, tf.tensor2d(keep, [r, 1]))
            : tf.clone(dy);
          return [dBase, dSrc];
        }),
    };
  });
  return f(base, src) as tf.Tensor2D;
}

/**
 * Scaled-dot-product attention for one chunk (a batch row and key/value
 * head, or an image group and head) as rank-2 products, which stay on the
 * fast wasm path: q [Tq*rep, d] (already scaled; rows ordered query-major,
 * the `rep` query heads sharing this kv head innermost), kT [d, Tk],
 * v [Tk, d], additive mask [Tq, 1, Tk] (0 / MASK_NEG) or null
 * -> out [Tq*rep, d].
 */
export function attendChunk(
  q: tf.Tensor2D,
  kT: tf.Tensor2D,
  v: tf.Tensor2D,
  mask: tf.Tensor3D | null,
  rep: number,
): tf.Tensor2D {
  let s: tf.Tensor = mm(q, kT); // [Tq*rep, Tk]
  if (mask) {
    const [tq, , tk] = mask.shape;
    s = rep === 1
      ? tf.add(s, tf.reshape(mask, [tq, tk]))
      : tf.reshape(tf.add(tf.reshape(s, [tq, rep, tk]), mask), [tq * rep, tk]);
  }
  return mm(tf.softmax(s) as tf.Tensor2D, v);
}

/**
 * tf.unstack along axis 0 that also works under a gradient tape when the
 * axis has size 1: TF.js passes a lone output gradient to Unpack's gradient
 * as a bare tensor, which its `stack` then rejects. A reshape avoids it.
 */
export function unstack0(x: tf.Tensor): tf.Tensor[] {
  return x.shape[0] === 1 ? [tf.reshape(x, x.shape.slice(1))] : tf.unstack(x);
}

/** Large negative additive mask value; finite so fully masked rows stay finite. */
export const MASK_NEG = -1e9;
