/**
 * Fused TF.js kernels of the `blas` backend, each with a hand-written
 * backward kernel registered as its gradient: RMSNorm, LayerNorm, the
 * q/k-norm + rotary + layout step before attention, masked attention over
 * blocks of queries and keys, SwiGLU, tanh-GELU and the weighted NLL of the
 * training losses. The arithmetic is in jobs.ts, split over the threads of
 * pool.ts; this module allocates the outputs, runs the jobs and adds up the
 * per-unit partial reductions in unit order.
 *
 * Why by hand: a training step of the composite TF.js graph is dominated by
 * many small elementwise kernels, their tape entries and the transposes
 * between layouts (profiled in `deno task bench --profile`), not by the
 * matmuls. One kernel per block reads its inputs once, writes its outputs
 * once, and calls BLAS with row strides instead of transposing. No
 * maintained library offers these kernels for TF.js's cpu storage.
 */
import * as tf from "@tensorflow/tfjs";
import type { BlasBackend } from "./blas_backend.ts";
import {
  type AttentionBlock,
  blocksByRow,
  ELEMS_PER_UNIT,
  pOffsets,
  ROWS_PER_UNIT,
} from "./jobs.ts";

export type { AttentionBlock };

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface KernelArgs<A> {
  inputs: Record<string, Info>;
  backend: BlasBackend;
  attrs: A;
}

export interface AttentionAttrs {
  blocks: AttentionBlock[];
  /** Query heads, key/value heads (query head h reads kv head h / (nH/nKV)), head size. */
  nH: number;
  nKV: number;
  hd: number;
  /** Queries per batch row (q has B*T rows). */
  T: number;
}

export interface QkPrepAttrs {
  B: number;
  T: number;
  nH: number;
  nKV: number;
  hd: number;
  eps: number;
  /** Multiplies q after the rotation (the attention scaling). */
  scale: number;
}

type NoAttrs = Record<never, never>;

const rowUnits = (rows: number) => Math.ceil(rows / ROWS_PER_UNIT);
const elemUnits = (n: number) => Math.ceil(n / ELEMS_PER_UNIT);

/** Sum per-unit partials [units, D] in unit order -> [D]. */
function sumUnits(part: Float64Array, D: number): Float32Array {
  const acc = new Float64Array(D);
  for (let o = 0; o < part.length; o += D) {
    for (let j = 0; j < D; j++) acc[j] += part[o + j];
  }
  return Float32Array.from(acc);
}

/**
 * Values of inputs in shared memory when the pool runs in parallel: small
 * ones (weights, tables) and those of heavy jobs (`always`) are copied;
 * other large ones are left as they are (the job then runs on one thread).
 */
function shared(backend: BlasBackend, t: Info, always = false): Float32Array {
  const v = backend.values(t);
  if (
    !backend.pool.parallel || v.buffer instanceof SharedArrayBuffer ||
    (v.length > 1 << 18 && !always)
  ) return v;
  const c = backend.f32(v.length, false);
  c.set(v);
  return c;
}

// ---------------------------------------------------------------------------
// norms

function rmsNorm(args: KernelArgs<{ eps: number }>): Info[] {
  const { backend, inputs } = args;
  const x = inputs.x, res = inputs.res;
  const D = x.shape[x.shape.length - 1], xv = backend.values(x);
  const R = xv.length / D;
  const y = backend.f32(xv.length, false), rstd = backend.f32(R, false);
  const h = res ? backend.f32(xv.length, false) : null;
  backend.pool.run(
    "rmsNorm",
    {
      x: xv,
      res: res ? backend.values(res) : null,
      h,
      w: shared(backend, inputs.w),
      y,
      rstd,
      D,
      eps: args.attrs.eps,
    },
    rowUnits(R),
    xv.length,
  );
  const out = [backend.output(y, x.shape), backend.output(rstd, [R])];
  // Stage2AddRmsNorm: [h, y, rstd]
  return h ? [backend.output(h, x.shape), ...out] : out;
}

function rmsNormGrad(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = inputs.x, D = x.shape[x.shape.length - 1];
  const xv = backend.values(x), R = xv.length / D;
  const dx = backend.f32(xv.length, false);
  const dwPart = backend.f64(rowUnits(R) * D);
  backend.pool.run(
    "rmsNormGrad",
    {
      dy: backend.values(inputs.dy),
      dres: inputs.dres ? backend.values(inputs.dres) : null,
      x: xv,
      w: shared(backend, inputs.w),
      rstd: backend.values(inputs.rstd),
      dx,
      dwPart,
      D,
    },
    rowUnits(R),
    xv.length,
  );
  return [
    backend.output(dx, x.shape),
    backend.output(sumUnits(dwPart, D), [D]),
  ];
}

function layerNorm(args: KernelArgs<{ eps: number }>): Info[] {
  const { backend, inputs } = args;
  const x = inputs.x, D = x.shape[x.shape.length - 1];
  const xv = backend.values(x), R = xv.length / D;
  const y = backend.f32(xv.length, false);
  const mean = backend.f32(R, false), rstd = backend.f32(R, false);
  backend.pool.run(
    "layerNorm",
    {
      x: xv,
      w: shared(backend, inputs.w),
      b: shared(backend, inputs.b),
      y,
      mean,
      rstd,
      D,
      eps: args.attrs.eps,
    },
    rowUnits(R),
    xv.length,
  );
  return [
    backend.output(y, x.shape),
    backend.output(mean, [R]),
    backend.output(rstd, [R]),
  ];
}

function layerNormGrad(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = inputs.x, D = x.shape[x.shape.length - 1];
  const xv = backend.values(x), R = xv.length / D;
  const dx = backend.f32(xv.length, false);
  const dwPart = backend.f64(rowUnits(R) * D);
  const dbPart = backend.f64(rowUnits(R) * D);
  backend.pool.run(
    "layerNormGrad",
    {
      dy: backend.values(inputs.dy),
      x: xv,
      w: shared(backend, inputs.w),
      mean: backend.values(inputs.mean),
      rstd: backend.values(inputs.rstd),
      dx,
      dwPart,
      dbPart,
      D,
    },
    rowUnits(R),
    xv.length,
  );
  return [
    backend.output(dx, x.shape),
    backend.output(sumUnits(dwPart, D), [D]),
    backend.output(sumUnits(dbPart, D), [D]),
  ];
}

// ---------------------------------------------------------------------------
// q/k norm + rotary + attention layouts
//
// Inputs: q [B*T, nH hd], k and v [B*T, nKV hd]; cos, sin [B*T, hd]; for
// Stage2QkPrep also the per-head RMSNorm weights qw, kw [hd] (Stage2RopePrep
// has no norm: the vision tower). Outputs: q [B*T, nH hd] (normed, rotated,
// scaled), kT [B, nKV, hd, T], v [B, nKV, T, hd] (the KV cache's layouts),
// and the norms' rstd [B*T, nH + nKV] when normed.

function qkPrep(args: KernelArgs<QkPrepAttrs>): Info[] {
  const { backend, inputs, attrs: a } = args;
  const { B, T, nH, nKV, hd } = a;
  const N = B * T, normed = inputs.qw !== undefined;
  const qo = backend.f32(N * nH * hd, false);
  const kT = backend.f32(N * nKV * hd, false),
    vo = backend.f32(N * nKV * hd, false);
  const rstd = normed ? backend.f32(N * (nH + nKV), false) : null;
  backend.pool.run(
    "qkPrep",
    {
      q: backend.values(inputs.q),
      k: backend.values(inputs.k),
      v: backend.values(inputs.v),
      cos: shared(backend, inputs.cos),
      sin: shared(backend, inputs.sin),
      qw: normed ? shared(backend, inputs.qw) : null,
      kw: normed ? shared(backend, inputs.kw) : null,
      qo,
      kT,
      vo,
      rstd,
      ...a,
      N,
    },
    rowUnits(N),
    N * (nH + 2 * nKV) * hd,
  );
  const out = [
    backend.output(qo, [N, nH * hd]),
    backend.output(kT, [B, nKV, hd, T]),
    backend.output(vo, [B, nKV, T, hd]),
  ];
  if (rstd) out.push(backend.output(rstd, [N, nH + nKV]));
  return out;
}

function qkPrepGrad(args: KernelArgs<QkPrepAttrs>): Info[] {
  const { backend, inputs, attrs: a } = args;
  const { B, T, nH, nKV, hd } = a;
  const N = B * T, normed = inputs.qw !== undefined, units = rowUnits(N);
  const dQ = backend.f32(N * nH * hd, false);
  const dK = backend.f32(N * nKV * hd, false),
    dV = backend.f32(N * nKV * hd, false);
  const dqwPart = normed ? backend.f64(units * hd) : null;
  const dkwPart = normed ? backend.f64(units * hd) : null;
  backend.pool.run(
    "qkPrepGrad",
    {
      q: backend.values(inputs.q),
      k: backend.values(inputs.k),
      cos: shared(backend, inputs.cos),
      sin: shared(backend, inputs.sin),
      qw: normed ? shared(backend, inputs.qw) : null,
      kw: normed ? shared(backend, inputs.kw) : null,
      rstd: normed ? backend.values(inputs.rstd) : null,
      dq: backend.values(inputs.dq),
      dkT: backend.values(inputs.dkT),
      dvo: backend.values(inputs.dv),
      dQ,
      dK,
      dV,
      dqwPart,
      dkwPart,
      ...a,
      N,
    },
    units,
    N * (nH + 2 * nKV) * hd,
  );
  const out = [
    backend.output(dQ, [N, nH * hd]),
    backend.output(dK, [N, nKV * hd]),
    backend.output(dV, [N, nKV * hd]),
  ];
  if (normed) {
    out.push(backend.output(sumUnits(dqwPart!, hd), [hd]));
    out.push(backend.output(sumUnits(dkwPart!, hd), [hd]));
  }
  return out;
}

// ---------------------------------------------------------------------------
// attention over blocks (units: batch row x kv head)

function attentionArgs(a: AttentionAttrs, kT: Info) {
  const B = kT.shape[0];
  return {
    blocks: a.blocks,
    byRow: blocksByRow(a.blocks, B),
    pOff: pOffsets(a.blocks, a.nH).off,
    nH: a.nH,
    nKV: a.nKV,
    hd: a.hd,
    T: a.T,
    Tk: kT.shape[3],
    units: B * a.nKV,
  };
}

function attention(args: KernelArgs<AttentionAttrs>): Info[] {
  const { backend, inputs, attrs: a } = args;
  const q = inputs.q, kT = inputs.kT;
  const { units, ...rest } = attentionArgs(a, kT);
  const P = backend.f32(pOffsets(a.blocks, a.nH).total, false);
  const out = backend.f32(backend.values(q).length);
  backend.pool.run(
    "attention",
    {
      q: backend.values(q),
      kT: backend.values(kT),
      v: backend.values(inputs.v),
      out,
      P,
      ...rest,
    },
    units,
    P.length * a.hd,
  );
  return [backend.output(out, q.shape), backend.output(P, [P.length])];
}

function attentionGrad(args: KernelArgs<AttentionAttrs>): Info[] {
  const { backend, inputs, attrs: a } = args;
  const q = inputs.q, kT = inputs.kT, v = inputs.v;
  const { units, ...rest } = attentionArgs(a, kT);
  const dq = backend.f32(backend.values(q).length);
  const dkT = backend.f32(backend.values(kT).length);
  const dv = backend.f32(backend.values(v).length);
  let maxBlock = 0;
  for (const bl of a.blocks) maxBlock = Math.max(maxBlock, bl.qLen * bl.kLen);
  backend.pool.run(
    "attentionGrad",
    {
      dy: backend.values(inputs.dy),
      q: backend.values(q),
      kT: backend.values(kT),
      v: backend.values(v),
      P: backend.values(inputs.P),
      dq,
      dkT,
      dv,
      maxBlock,
      ...rest,
    },
    units,
    backend.values(inputs.P).length * 2 * a.hd,
  );
  return [
    backend.output(dq, q.shape),
    backend.output(dkT, kT.shape),
    backend.output(dv, v.shape),
  ];
}

// ---------------------------------------------------------------------------
// products sharing an input or ending in a residual: x @ [w0 | w1 | ...]
// as separate outputs (the backward sums dy_i w_i^T in one accumulating
// pass), and res + a @ w (BLAS accumulates onto a copy of res)

function matMulMulti(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = inputs.x, N = x.shape[0];
  return ["w0", "w1", "w2"].filter((k) => inputs[k]).map((k) => {
    const w = inputs[k], out = backend.f32(N * w.shape[1], false);
    backend.gemmInto(x, false, w, false, out, 0);
    return backend.output(out, [N, w.shape[1]]);
  });
}

function matMulMultiGradX(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const N = inputs.dy0.shape[0], K = inputs.w0.shape[0];
  const dx = backend.f32(N * K, false);
  ["0", "1", "2"].filter((i) => inputs[`w${i}`]).forEach((i, n) =>
    backend.gemmInto(
      inputs[`dy${i}`],
      false,
      inputs[`w${i}`],
      true,
      dx,
      n ? 1 : 0,
    )
  );
  return [backend.output(dx, [N, K])];
}

function addMatMul(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const res = inputs.res, out = backend.f32(backend.values(res).length, false);
  out.set(backend.values(res));
  backend.gemmInto(inputs.a, false, inputs.w, false, out, 1);
  return [backend.output(out, res.shape)];
}

// ---------------------------------------------------------------------------
// elementwise

function swiglu(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const g = backend.values(inputs.g);
  const act = backend.f32(g.length, false), sig = backend.f32(g.length, false);
  backend.pool.run(
    "swiglu",
    {
      g,
      u: backend.values(inputs.u),
      act,
      sig,
    },
    elemUnits(g.length),
    4 * g.length,
  );
  return [
    backend.output(act, inputs.g.shape),
    backend.output(sig, inputs.g.shape),
  ];
}

function swigluGrad(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const g = backend.values(inputs.g);
  const dg = backend.f32(g.length, false), du = backend.f32(g.length, false);
  backend.pool.run(
    "swigluGrad",
    {
      dy: backend.values(inputs.dy),
      g,
      u: backend.values(inputs.u),
      sig: backend.values(inputs.sig),
      dg,
      du,
    },
    elemUnits(g.length),
    g.length,
  );
  return [
    backend.output(dg, inputs.g.shape),
    backend.output(du, inputs.g.shape),
  ];
}

function geluTanh(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = backend.values(inputs.x), y = backend.f32(x.length, false);
  backend.pool.run("geluTanh", { x, y }, elemUnits(x.length), 4 * x.length);
  return [backend.output(y, inputs.x.shape)];
}

function geluTanhGrad(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = backend.values(inputs.x), dx = backend.f32(x.length, false);
  backend.pool.run(
    "geluTanhGrad",
    { dy: backend.values(inputs.dy), x, dx },
    elemUnits(x.length),
    4 * x.length,
  );
  return [backend.output(dx, inputs.x.shape)];
}

// ---------------------------------------------------------------------------
// weighted negative log-likelihood: loss = -sum(W * log_softmax(z)) over
// rows of z, W [N, V]; the forward also returns dloss/dz, which the
// backward scales by the upstream gradient

function weightedNll(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const z = inputs.logits, [N, V] = z.shape;
  const grad = backend.f32(N * V, false);
  const lossPart = backend.f64(rowUnits(N));
  backend.pool.run(
    "weightedNll",
    {
      z: backend.values(z),
      w: shared(backend, inputs.weights, true),
      grad,
      lossPart,
      V,
    },
    rowUnits(N),
    4 * N * V,
  );
  return [
    backend.output(sumUnits(lossPart, 1), []),
    backend.output(grad, z.shape),
  ];
}

function adamwKernel(
  args: KernelArgs<
    {
      b1: number;
      b2: number;
      eps: number;
      decay: number;
      step: number;
      sqrtBc2: number;
    }
  >,
): Info[] {
  const { backend, inputs } = args;
  const p = backend.values(inputs.p), n = p.length;
  const out = [0, 1, 2].map(() => backend.f32(n, false));
  backend.pool.run(
    "adamw",
    {
      p,
      g: backend.values(inputs.g),
      m: backend.values(inputs.m),
      v: backend.values(inputs.v),
      p1: out[0],
      m1: out[1],
      v1: out[2],
      ...args.attrs,
    },
    elemUnits(n),
    4 * n,
  );
  return out.map((o) => backend.output(o, inputs.p.shape));
}

function scaleKernel(args: KernelArgs<NoAttrs>): Info[] {
  const { backend, inputs } = args;
  const x = backend.values(inputs.x), y = backend.f32(x.length, false);
  backend.pool.run(
    "scale",
    { x, y, s: backend.values(inputs.s)[0] },
    elemUnits(x.length),
    x.length,
  );
  return [backend.output(y, inputs.x.shape)];
}

// ---------------------------------------------------------------------------
// registration

type AnyKernel = (args: KernelArgs<never>) => Info[];

const KERNELS: Record<string, AnyKernel> = {
  Stage2RmsNorm: rmsNorm as AnyKernel,
  Stage2AddRmsNorm: rmsNorm as AnyKernel,
  Stage2RmsNormGrad: rmsNormGrad as AnyKernel,
  Stage2MatMul2: matMulMulti as AnyKernel,
  Stage2MatMul3: matMulMulti as AnyKernel,
  Stage2MatMulMultiGradX: matMulMultiGradX as AnyKernel,
  Stage2AddMatMul: addMatMul as AnyKernel,
  Stage2LayerNorm: layerNorm as AnyKernel,
  Stage2LayerNormGrad: layerNormGrad as AnyKernel,
  Stage2QkPrep: qkPrep as AnyKernel,
  Stage2QkPrepGrad: qkPrepGrad as AnyKernel,
  Stage2RopePrep: qkPrep as AnyKernel,
  Stage2RopePrepGrad: qkPrepGrad as AnyKernel,
  Stage2Attention: attention as AnyKernel,
  Stage2AttentionGrad: attentionGrad as AnyKernel,
  Stage2SwiGlu: swiglu as AnyKernel,
  Stage2SwiGluGrad: swigluGrad as AnyKernel,
  Stage2WeightedNll: weightedNll as AnyKernel,
  Stage2Scale: scaleKernel as AnyKernel,
  Stage2AdamW: adamwKernel as AnyKernel,
  Stage2GeluTanh: geluTanh as AnyKernel,
  Stage2GeluTanhGrad: geluTanhGrad as AnyKernel,
};

type Grads = Record<string, () => tf.Tensor>;

function run(name: string, inputs: tf.NamedTensorMap, attrs: object = {}) {
  return tf.engine().runKernel(
    name,
    inputs,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
}

/**
 * The gradient of each fused kernel runs its backward kernel once and hands
 * each input its slice of the result. TF.js passes saved tensors in the
 * order inputsToSave then outputsToSave.
 */
const GRADIENTS: tf.GradConfig[] = [
  {
    kernelName: "Stage2RmsNorm",
    inputsToSave: ["x", "w"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, w, rstd] = saved;
      const r = run("Stage2RmsNormGrad", { dy, x, w, rstd });
      return { x: () => r[0], w: () => r[1] };
    },
  },
  {
    kernelName: "Stage2AddRmsNorm",
    inputsToSave: ["w"],
    outputsToSave: [true, false, true],
    gradFunc: (dys, saved) => {
      const [dres, dy] = dys as tf.Tensor[];
      const [w, x, rstd] = saved;
      // the norm's gradient plus the residual stream's, in one pass
      const r = run("Stage2RmsNormGrad", { dy, dres, x, w, rstd });
      return { x: () => r[0], res: () => tf.clone(r[0]), w: () => r[1] };
    },
  },
  matMulMultiGrad("Stage2MatMul2", 2),
  matMulMultiGrad("Stage2MatMul3", 3),
  {
    kernelName: "Stage2AddMatMul",
    inputsToSave: ["a", "w"],
    gradFunc: (dy, saved) => {
      const [a, w] = saved;
      const d = dy as tf.Tensor2D;
      return {
        res: () => tf.clone(d),
        a: () => tf.matMul(d, w as tf.Tensor2D, false, true),
        w: () => tf.matMul(a as tf.Tensor2D, d, true, false),
      };
    },
  },
  {
    kernelName: "Stage2LayerNorm",
    inputsToSave: ["x", "w"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [x, w, mean, rstd] = saved;
      const r = run("Stage2LayerNormGrad", { dy, x, w, mean, rstd });
      return { x: () => r[0], w: () => r[1], b: () => r[2] };
    },
  },
  qkPrepGradConfig("Stage2QkPrep", true),
  qkPrepGradConfig("Stage2RopePrep", false),
  {
    kernelName: "Stage2Attention",
    inputsToSave: ["q", "kT", "v"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0];
      const [q, kT, v, P] = saved;
      const r = run("Stage2AttentionGrad", { dy, q, kT, v, P }, attrs);
      return { q: () => r[0], kT: () => r[1], v: () => r[2] };
    },
  },
  {
    kernelName: "Stage2SwiGlu",
    inputsToSave: ["g", "u"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [g, u, sig] = saved;
      const r = run("Stage2SwiGluGrad", { dy, g, u, sig });
      return { g: () => r[0], u: () => r[1] };
    },
  },
  {
    kernelName: "Stage2WeightedNll",
    inputsToSave: ["weights"],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const dy = (dys as tf.Tensor[])[0];
      const [weights, grad] = saved;
      const r = run("Stage2Scale", { x: grad, s: dy });
      // the weights are data (targets), never trained
      return { logits: () => r[0], weights: () => tf.zerosLike(weights) };
    },
  },
  {
    kernelName: "Stage2GeluTanh",
    inputsToSave: ["x"],
    gradFunc: (dy, saved) => {
      const r = run("Stage2GeluTanhGrad", { dy: dy as tf.Tensor, x: saved[0] });
      return { x: () => r[0] };
    },
  },
];

function matMulMultiGrad(kernelName: string, n: number): tf.GradConfig {
  const ws = Array.from({ length: n }, (_, i) => `w${i}`);
  return {
    kernelName,
    inputsToSave: ["x", ...ws],
    gradFunc: (dys, saved) => {
      const dy = dys as tf.Tensor[];
      const [x, ...w] = saved;
      const inputs: tf.NamedTensorMap = {};
      w.forEach((t, i) => {
        inputs[`w${i}`] = t;
        inputs[`dy${i}`] = dy[i];
      });
      const g: Grads = {
        x: () => run("Stage2MatMulMultiGradX", inputs)[0],
      };
      w.forEach((_, i) => {
        g[`w${i}`] = () =>
          tf.matMul(x as tf.Tensor2D, dy[i] as tf.Tensor2D, true, false);
      });
      return g;
    },
  };
}

function qkPrepGradConfig(kernelName: string, normed: boolean): tf.GradConfig {
  const inputsToSave = normed
    ? ["q", "k", "v", "cos", "sin", "qw", "kw"]
    : ["q", "k", "v", "cos", "sin"];
  return {
    kernelName,
    inputsToSave,
    outputsToSave: normed ? [false, false, false, true] : [],
    gradFunc: (dys, saved, attrs) => {
      const [dq, dkT, dv] = dys as tf.Tensor[];
      const inputs: tf.NamedTensorMap = { dq, dkT, dv };
      [...inputsToSave, "rstd"].forEach((n, i) => {
        if (saved[i]) inputs[n] = saved[i];
      });
      const r = run(`${kernelName}Grad`, inputs, attrs);
      const g: Grads = { q: () => r[0], k: () => r[1], v: () => r[2] };
      if (normed) {
        g.qw = () => r[3];
        g.kw = () => r[4];
      }
      return g;
    },
  };
}

let registered = false;

/** Register the fused kernels and their gradients for `backendName` (idempotent). */
export function registerFusedKernels(backendName: string): void {
  if (registered) return;
  registered = true;
  for (const [kernelName, fn] of Object.entries(KERNELS)) {
    tf.registerKernel({
      kernelName,
      backendName,
      kernelFunc: fn as unknown as tf.KernelFunc,
    });
  }
  for (const g of GRADIENTS) tf.registerGradient(g);
}

/** True when the active backend runs the fused kernels. */
export function fusedAvailable(): boolean {
  return tf.getKernel("Stage2Attention", tf.getBackend()) !== undefined;
}

export { run as runFused };
