/**
 * Replacements for TF.js `cpu` kernels that the `blas` backend inherits and
 * that a training step or the losses still call, where the cpu versions
 * are generic enough to be slow (measured in `deno task bench --profile`):
 *
 * - broadcasting binary ops build index arrays per element; here a
 *   broadcast is a stride of 0 and the innermost axis is a tight loop;
 * - Slice/SplitV/Unpack, Pad (the gradient of a slice) and Transpose
 *   compute a multi-index per element; here they are strided copies whose
 *   contiguous runs are `TypedArray.set` calls;
 * - UnsortedSegmentSum (the gradient of a gather, e.g. of the embedding
 *   table) loops over every segment with a full mask; here it is one
 *   scatter-add pass in row order;
 * - GatherV2 on axis 0 copies rows; Sum over leading axes (bias gradients)
 *   adds rows instead of transposing first; Exp, Sigmoid, Softmax use the
 *   fast exponential of fast_math.ts.
 *
 * Each replacement handles float32 (gathers and segment sums also their
 * int32 indices) in the shapes above and defers to the cpu kernel for
 * anything else, so semantics are TF.js's. Loops run in a fixed order:
 * results are deterministic.
 */
import * as tf from "@tensorflow/tfjs";
import type { BlasBackend } from "./blas_backend.ts";
import { expf, sigmoidf } from "./fast_math.ts";

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface Args {
  inputs: Record<string, Info>;
  backend: BlasBackend;
  attrs: Record<string, unknown>;
}

type KernelFn = (args: Args) => Info | Info[];

function sizeOf(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of `shape`. */
export function stridesOf(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

type Arr = Float32Array | Int32Array;

/**
 * dst[dOff + sum(i_k * dStr_k)] = src[sOff + sum(i_k * sStr_k)] over every
 * multi-index i of `shape`; the innermost axis is the loop, the outer axes
 * an odometer.
 */
export function stridedCopy<A extends Float32Array | Int32Array | Uint8Array>(
  dst: A,
  dOff: number,
  dStr: number[],
  src: A,
  sOff: number,
  sStr: number[],
  shape: number[],
): void {
  const r = shape.length;
  if (r === 0) {
    dst[dOff] = src[sOff];
    return;
  }
  if (sizeOf(shape) === 0) return;
  const n = shape[r - 1], ds = dStr[r - 1], ss = sStr[r - 1];
  const idx = new Array(r - 1).fill(0);
  let d = dOff, s = sOff;
  for (;;) {
    if (ds === 1 && ss === 1) dst.set(src.subarray(s, s + n), d);
    else for (let j = 0; j < n; j++) dst[d + j * ds] = src[s + j * ss];
    let k = r - 2;
    while (k >= 0 && ++idx[k] === shape[k]) {
      d -= (shape[k] - 1) * dStr[k];
      s -= (shape[k] - 1) * sStr[k];
      idx[k--] = 0;
    }
    if (k < 0) return;
    d += dStr[k];
    s += sStr[k];
  }
}

/** Supported dtypes: a new zeroed array (float32 in the pool's memory), else null. */
function newArray(
  dtype: tf.DataType,
  n: number,
  backend?: BlasBackend,
  zero = false,
): Arr | null {
  if (dtype === "float32") {
    return backend ? backend.f32(n, zero) : new Float32Array(n);
  }
  if (dtype === "int32") return new Int32Array(n);
  return null;
}

// ---------------------------------------------------------------------------
// slicing, padding, transposing

function sliceOut(b: BlasBackend, x: Info, begin: number[], size: number[]) {
  const out = newArray(x.dtype, sizeOf(size), b)!;
  const st = stridesOf(x.shape);
  let off = 0;
  for (let i = 0; i < begin.length; i++) off += begin[i] * st[i];
  stridedCopy(out, 0, stridesOf(size), b.values(x), off, st, size);
  return b.makeTensorInfo(size, x.dtype, out) as Info;
}

function slice(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.x;
  if (!newArray(x.dtype, 0)) return fallback(args);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.TensorInfo,
    args.attrs.begin as number[],
    args.attrs.size as number[],
  );
  return sliceOut(args.backend, x, begin, size);
}

function splitV(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.x;
  if (!newArray(x.dtype, 0)) return fallback(args);
  const axis = tf.util.parseAxisParam(args.attrs.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(
    x as unknown as tf.Tensor,
    args.attrs.numOrSizeSplits as number[] | number,
    axis,
  );
  const begin = new Array(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const out = sliceOut(args.backend, x, [...begin], size);
    begin[axis] += s;
    return out;
  });
}

function unpack(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.value;
  if (!newArray(x.dtype, 0)) return fallback(args);
  let axis = args.attrs.axis as number;
  if (axis < 0) axis += x.shape.length;
  const outShape = x.shape.filter((_, i) => i !== axis);
  const size = [...x.shape];
  size[axis] = 1;
  return Array.from({ length: x.shape[axis] }, (_, i) => {
    const begin = new Array(x.shape.length).fill(0);
    begin[axis] = i;
    const out = sliceOut(args.backend, x, begin, size);
    return { ...out, shape: outShape };
  });
}

function pad(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.x;
  const cv = args.attrs.constantValue as number;
  if (!newArray(x.dtype, 0)) return fallback(args);
  const paddings = args.attrs.paddings as [number, number][];
  const shape = x.shape.map((d, i) => paddings[i][0] + d + paddings[i][1]);
  const out = newArray(x.dtype, sizeOf(shape), args.backend, cv === 0)!;
  if (cv !== 0) out.fill(cv);
  const st = stridesOf(shape);
  let off = 0;
  for (let i = 0; i < shape.length; i++) off += paddings[i][0] * st[i];
  stridedCopy(
    out,
    off,
    st,
    args.backend.values(x),
    0,
    stridesOf(x.shape),
    x.shape,
  );
  return args.backend.makeTensorInfo(shape, x.dtype, out) as Info;
}

function transpose(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.x;
  if (!newArray(x.dtype, 0)) return fallback(args);
  const perm = args.attrs.perm as number[];
  const shape = perm.map((p) => x.shape[p]);
  const xs = stridesOf(x.shape);
  const out = newArray(x.dtype, sizeOf(shape), args.backend)!;
  stridedCopy(
    out,
    0,
    stridesOf(shape),
    args.backend.values(x),
    0,
    perm.map((p) => xs[p]),
    shape,
  );
  return args.backend.makeTensorInfo(shape, x.dtype, out) as Info;
}

// ---------------------------------------------------------------------------
// gathers and scatters

function gatherV2(args: Args, fallback: KernelFn): Info | Info[] {
  const { x, indices } = args.inputs;
  const axis = tf.util.parseAxisParam(args.attrs.axis as number, x.shape)[0];
  if (
    axis !== 0 || (args.attrs.batchDims as number ?? 0) !== 0 ||
    indices.dtype !== "int32" || !newArray(x.dtype, 0)
  ) return fallback(args);
  const xv = args.backend.values(x) as Arr;
  const ids = args.backend.values(indices) as unknown as Int32Array;
  const row = sizeOf(x.shape.slice(1)), n = x.shape[0];
  const out = newArray(x.dtype, ids.length * row, args.backend)!;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < n)) {
      throw new Error(`GatherV2: index ${id} is not in [0, ${n - 1}]`);
    }
    out.set(xv.subarray(id * row, id * row + row), i * row);
  }
  return args.backend.makeTensorInfo(
    [...indices.shape, ...x.shape.slice(1)],
    x.dtype,
    out,
  ) as Info;
}

function unsortedSegmentSum(args: Args, fallback: KernelFn): Info | Info[] {
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs.numSegments as number;
  if (
    x.dtype !== "float32" || segmentIds.shape.length !== 1 ||
    segmentIds.dtype !== "int32"
  ) return fallback(args);
  const xv = args.backend.values(x);
  const ids = args.backend.values(segmentIds) as unknown as Int32Array;
  const row = sizeOf(x.shape.slice(1));
  const acc = args.backend.f32(numSegments * row);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    // TF: ids outside [0, numSegments) are dropped
    if (s < 0 || s >= numSegments) continue;
    const o = s * row, xi = i * row;
    for (let j = 0; j < row; j++) acc[o + j] += xv[xi + j];
  }
  return args.backend.output(acc, [numSegments, ...x.shape.slice(1)]);
}

// ---------------------------------------------------------------------------
// elementwise

const enum Op {
  Add,
  Sub,
  Mul,
  Div,
  Max,
  Min,
  SqDiff,
}

/**
 * o[oo + j] = a[ao + j*as] (op) b[bo + j*bs]. The common cases (both
 * contiguous, or one side a repeated scalar; add, sub, mul, div) have their
 * own loops: a loop that dispatches per element runs several times slower.
 */
function runOp(
  op: Op,
  o: Float32Array,
  oo: number,
  a: Float32Array,
  ao: number,
  as: number,
  b: Float32Array,
  bo: number,
  bs: number,
  n: number,
): void {
  if (op <= Op.Div && (as === 1 || as === 0) && (bs === 1 || bs === 0)) {
    fastOp(op, o, oo, a, ao, as === 0, b, bo, bs === 0, n);
    return;
  }
  for (let j = 0; j < n; j++) {
    o[oo + j] = apply(op, a[ao + j * as], b[bo + j * bs]);
  }
}

function apply(op: Op, x: number, y: number): number {
  switch (op) {
    case Op.Add:
      return x + y;
    case Op.Sub:
      return x - y;
    case Op.Mul:
      return x * y;
    case Op.Div:
      return x / y;
    case Op.Max:
      return x > y || x !== x ? x : y;
    case Op.Min:
      return x < y || x !== x ? x : y;
    case Op.SqDiff:
      return (x - y) * (x - y);
  }
}

/** Add/sub/mul/div with each operand contiguous or a scalar (s = scalar). */
function fastOp(
  op: Op,
  o: Float32Array,
  oo: number,
  a: Float32Array,
  ao: number,
  sa: boolean,
  b: Float32Array,
  bo: number,
  sb: boolean,
  n: number,
): void {
  if (sa && sb) {
    o.fill(apply(op, a[ao], b[bo]), oo, oo + n);
    return;
  }
  if (sb) {
    const y = b[bo];
    if (op === Op.Add) {
      for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] + y;
    } else if (op === Op.Sub) {
      for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] - y;
    } else if (op === Op.Mul) {
      for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] * y;
    } else for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] / y;
    return;
  }
  if (sa) {
    const x = a[ao];
    if (op === Op.Add) {
      for (let j = 0; j < n; j++) o[oo + j] = x + b[bo + j];
    } else if (op === Op.Sub) {
      for (let j = 0; j < n; j++) o[oo + j] = x - b[bo + j];
    } else if (op === Op.Mul) {
      for (let j = 0; j < n; j++) o[oo + j] = x * b[bo + j];
    } else for (let j = 0; j < n; j++) o[oo + j] = x / b[bo + j];
    return;
  }
  if (op === Op.Add) {
    for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] + b[bo + j];
  } else if (op === Op.Sub) {
    for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] - b[bo + j];
  } else if (op === Op.Mul) {
    for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] * b[bo + j];
  } else {
    for (let j = 0; j < n; j++) o[oo + j] = a[ao + j] / b[bo + j];
  }
}

/** Strides of `shape` broadcast to `out` (0 on broadcast axes). */
function broadcastStrides(shape: number[], out: number[]): number[] {
  const st = stridesOf(shape), r = out.length, k = r - shape.length;
  return out.map((_, i) => i < k || shape[i - k] === 1 ? 0 : st[i - k]);
}

function binary(op: Op) {
  return (args: Args, fallback: KernelFn): Info | Info[] => {
    const { a, b } = args.inputs;
    if (a.dtype !== "float32" || b.dtype !== "float32") return fallback(args);
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const av = args.backend.values(a), bv = args.backend.values(b);
    const out = args.backend.f32(sizeOf(shape), false);
    const r = shape.length;
    const n = out.length;
    if (
      r === 0 ||
      (av.length === n || av.length === 1) &&
        (bv.length === n || bv.length === 1)
    ) {
      // same shapes, or a scalar on one side: one flat loop
      runOp(
        op,
        out,
        0,
        av,
        0,
        av.length === n ? 1 : 0,
        bv,
        0,
        bv.length === n ? 1 : 0,
        n,
      );
      return args.backend.output(out, shape);
    }
    const sa = broadcastStrides(a.shape, shape);
    const sb = broadcastStrides(b.shape, shape);
    const run = shape[r - 1];
    const idx = new Array(r - 1).fill(0);
    let ao = 0, bo = 0;
    for (let oo = 0; oo < n; oo += run) {
      runOp(op, out, oo, av, ao, sa[r - 1], bv, bo, sb[r - 1], run);
      let k = r - 2;
      while (k >= 0 && ++idx[k] === shape[k]) {
        ao -= (shape[k] - 1) * sa[k];
        bo -= (shape[k] - 1) * sb[k];
        idx[k--] = 0;
      }
      if (k >= 0) {
        ao += sa[k];
        bo += sb[k];
      }
    }
    return args.backend.output(out, shape);
  };
}

const enum Un {
  Exp,
  Sigmoid,
  Sqrt,
  Rsqrt,
  Square,
  Neg,
}

/** Elementwise x -> f(x), one loop per function (see runOp). */
function unary(f: Un) {
  return (args: Args, fallback: KernelFn): Info | Info[] => {
    const x = args.inputs.x;
    if (x.dtype !== "float32") return fallback(args);
    const v = args.backend.values(x), n = v.length;
    const o = args.backend.f32(n, false);
    switch (f) {
      case Un.Exp:
        for (let i = 0; i < n; i++) o[i] = expf(v[i]);
        break;
      case Un.Sigmoid:
        for (let i = 0; i < n; i++) o[i] = sigmoidf(v[i]);
        break;
      case Un.Sqrt:
        for (let i = 0; i < n; i++) o[i] = Math.sqrt(v[i]);
        break;
      case Un.Rsqrt:
        for (let i = 0; i < n; i++) o[i] = 1 / Math.sqrt(v[i]);
        break;
      case Un.Square:
        for (let i = 0; i < n; i++) o[i] = v[i] * v[i];
        break;
      case Un.Neg:
        for (let i = 0; i < n; i++) o[i] = -v[i];
        break;
    }
    return args.backend.output(o, x.shape);
  };
}

function softmax(args: Args, fallback: KernelFn): Info | Info[] {
  const x = args.inputs.logits;
  const dim = args.attrs.dim as number;
  if (
    x.dtype !== "float32" || (dim !== -1 && dim !== x.shape.length - 1)
  ) return fallback(args);
  const xv = args.backend.values(x);
  const D = x.shape[x.shape.length - 1];
  const out = args.backend.f32(xv.length, false);
  for (let o = 0; o < xv.length; o += D) {
    let mx = -Infinity;
    for (let j = 0; j < D; j++) if (xv[o + j] > mx) mx = xv[o + j];
    let sum = 0;
    for (let j = 0; j < D; j++) {
      out[o + j] = expf(xv[o + j] - mx);
      sum += out[o + j];
    }
    const inv = 1 / sum;
    for (let j = 0; j < D; j++) out[o + j] *= inv;
  }
  return args.backend.output(out, x.shape);
}

// ---------------------------------------------------------------------------
// reductions over leading axes (bias and broadcast gradients) or trailing
// axes (row sums and maxima)

function reduce(kind: "sum" | "max") {
  return (args: Args, fallback: KernelFn): Info | Info[] => {
    const x = args.inputs.x;
    if (x.dtype !== "float32" || x.shape.length === 0) return fallback(args);
    const r = x.shape.length;
    // Sum names its axes `axis`, Max `reductionIndices`
    const axes = tf.util.parseAxisParam(
      (args.attrs.axis ?? args.attrs.reductionIndices) as number | number[],
      x.shape,
    ).sort((p, q) => p - q);
    const prefix = axes.every((a, i) => a === i);
    const suffix = axes.every((a, i) => a === r - axes.length + i);
    if (!prefix && !suffix) return fallback(args);
    const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const shape = args.attrs.keepDims
      ? keep
      : keep.filter((_, i) => !axes.includes(i));
    const xv = args.backend.values(x);
    const red = sizeOf(axes.map((a) => x.shape[a]));
    const kept = xv.length / red;
    const out = args.backend.f32(kept, false);
    if (suffix) {
      // rows of `red` contiguous values
      for (let i = 0; i < kept; i++) {
        const o = i * red;
        let acc = kind === "sum" ? 0 : -Infinity;
        if (kind === "sum") { for (let j = 0; j < red; j++) acc += xv[o + j]; }
        else {
          for (let j = 0; j < red; j++) {
            const v = xv[o + j];
            if (v > acc || v !== v) acc = v;
          }
        }
        out[i] = acc;
      }
    } else {
      // `red` rows of `kept` values, combined elementwise in row order
      const acc = new Float64Array(kept).fill(kind === "sum" ? 0 : -Infinity);
      for (let i = 0; i < red; i++) {
        const o = i * kept;
        if (kind === "sum") {
          for (let j = 0; j < kept; j++) acc[j] += xv[o + j];
        } else {
          for (let j = 0; j < kept; j++) {
            const v = xv[o + j];
            if (v > acc[j] || v !== v) acc[j] = v;
          }
        }
      }
      out.set(acc);
    }
    return args.backend.output(out, shape);
  };
}

const OVERRIDES: Record<string, (a: Args, f: KernelFn) => Info | Info[]> = {
  Slice: slice,
  SplitV: splitV,
  Unpack: unpack,
  PadV2: pad,
  Transpose: transpose,
  GatherV2: gatherV2,
  UnsortedSegmentSum: unsortedSegmentSum,
  Add: binary(Op.Add),
  Sub: binary(Op.Sub),
  Multiply: binary(Op.Mul),
  RealDiv: binary(Op.Div),
  Maximum: binary(Op.Max),
  Minimum: binary(Op.Min),
  SquaredDifference: binary(Op.SqDiff),
  Exp: unary(Un.Exp),
  Sigmoid: unary(Un.Sigmoid),
  Sqrt: unary(Un.Sqrt),
  Rsqrt: unary(Un.Rsqrt),
  Square: unary(Un.Square),
  Neg: unary(Un.Neg),
  Softmax: softmax,
  Sum: reduce("sum"),
  Max: reduce("max"),
};

/** Replace the cpu kernels above for `backendName` (which must already have them). */
export function registerFastKernels(backendName: string): void {
  for (const [name, impl] of Object.entries(OVERRIDES)) {
    const cfg = tf.getKernel(name, backendName);
    if (!cfg) continue;
    const original = cfg.kernelFunc as unknown as KernelFn;
    tf.unregisterKernel(name, backendName);
    tf.registerKernel({
      ...cfg,
      kernelFunc: ((a: Args) => impl(a, original)) as unknown as tf.KernelFunc,
    });
  }
}
