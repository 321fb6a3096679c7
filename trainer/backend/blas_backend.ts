/**
 * The `blas` TF.js backend: TF.js's `cpu` backend (tensor data in ordinary
 * JS TypedArrays) with its matmul kernels replaced by the system BLAS
 * through FFI, plus the fused kernels of `fused_kernels.ts`.
 *
 * Why the cpu backend's storage and not the wasm heap (measured on the
 * training workload, see bench/): BLAS reads and writes the TypedArrays in
 * place through FFI, so no tensor is ever copied to reach it, and JS memory
 * has no 4 GiB ceiling, so a 2B-parameter checkpoint (8.5 GB in float32)
 * loads. The wasm backend's SIMD elementwise kernels would be faster than
 * the cpu backend's generic JS ones, but on this path the hot elementwise
 * work runs inside fused kernels (RMSNorm, rope, masked softmax, SwiGLU,
 * LayerNorm, GELU) with hand-written backward passes, which removes most of
 * those kernels and their tape entries altogether; what is left of the cpu
 * kernels is off the profile's top (`deno task bench --profile`).
 */
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs";
import type { BlasLibrary } from "./blas_lib.ts";
import { registerFastKernels } from "./fast_kernels.ts";
import { registerFusedKernels } from "./fused_kernels.ts";

export const BLAS_BACKEND = "blas";

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

/** The cpu backend with a BLAS handle; data stays in JS TypedArrays. */
export class BlasBackend extends MathBackendCPU {
  constructor(readonly lib: BlasLibrary) {
    super();
    // the cpu backend's first write prints an advert for tfjs-node
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** The stored values of a tensor (no copy: treat as read-only). */
  values(t: Info): Float32Array {
    return this.data.get(t.dataId).values as Float32Array;
  }

  /** A new float32 tensor owning `values` (no copy). */
  output(values: Float32Array, shape: number[]): Info {
    return this.makeTensorInfo(shape, "float32", values) as Info;
  }
}

interface MatMulArgs {
  inputs: { a: Info; b: Info; bias?: Info; preluActivationWeights?: Info };
  backend: BlasBackend;
  attrs: {
    transposeA: boolean;
    transposeB: boolean;
    activation?: string;
    leakyreluAlpha?: number;
  };
}

type KernelFn = (args: unknown) => Info | Info[];

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * BatchMatMul on BLAS: one sgemm per batch entry, the transpose flags passed
 * through (no transposed copies); batch dims broadcast like TF.js's cpu
 * kernel (a size-1 batch repeats).
 */
function batchMatMul(args: MatMulArgs, fallback: KernelFn): Info {
  const { a, b } = args.inputs;
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    return fallback(args) as Info;
  }
  const { transposeA: tA, transposeB: tB } = args.attrs;
  const backend = args.backend;
  const ra = a.shape.length, rb = b.shape.length;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${tA} and transposeB=${tB} must match.`,
    );
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const batchA = sizeOf(a.shape.slice(0, -2)),
    batchB = sizeOf(b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  const av = backend.values(a), bv = backend.values(b);
  const out = new Float32Array(batch * m * n);
  for (let i = 0; i < batch; i++) {
    backend.lib.sgemm(
      tA,
      tB,
      m,
      n,
      k,
      1,
      av,
      (i % batchA) * m * k,
      tA ? m : k,
      bv,
      (i % batchB) * k * n,
      tB ? k : n,
      0,
      out,
      i * m * n,
      n,
    );
  }
  return backend.output(out, [...outer, m, n]);
}

/** tf.fused.matMul: the BLAS product, then bias and activation by the cpu kernels. */
function fusedMatMul(args: MatMulArgs): Info {
  const { backend } = args;
  const { bias, preluActivationWeights } = args.inputs;
  let y = batchMatMul(args, () => {
    throw new Error("_FusedMatMul: only float32 is supported");
  });
  const run = (name: string, inputs: object, attrs: object = {}) => {
    const cfg = tf.getKernel(name, BLAS_BACKEND)!;
    const next = cfg.kernelFunc({ inputs, backend, attrs } as never) as Info;
    backend.disposeIntermediateTensorInfo(y as tf.TensorInfo);
    y = next;
  };
  if (bias) run("Add", { a: y, b: bias });
  switch (args.attrs.activation ?? "linear") {
    case "linear":
      break;
    case "relu":
      run("Relu", { x: y });
      break;
    case "relu6":
      run("Relu6", { x: y });
      break;
    case "elu":
      run("Elu", { x: y });
      break;
    case "sigmoid":
      run("Sigmoid", { x: y });
      break;
    case "prelu":
      run("Prelu", { x: y, alpha: preluActivationWeights });
      break;
    case "leakyrelu":
      run("LeakyRelu", { x: y }, { alpha: args.attrs.leakyreluAlpha });
      break;
    default:
      throw new Error(`_FusedMatMul: activation ${args.attrs.activation}`);
  }
  return y;
}

let registered = false;

/**
 * Register the `blas` backend: every `cpu` kernel under the new name, then
 * over them the BLAS matmuls, the faster generic kernels of fast_kernels.ts
 * and the fused kernels of fused_kernels.ts. Idempotent.
 */
export function registerBlasBackend(lib: BlasLibrary): void {
  if (registered) return;
  registered = true;
  tf.registerBackend(BLAS_BACKEND, () => new BlasBackend(lib), 3);
  for (const cfg of tf.getKernelsForBackend("cpu")) {
    tf.registerKernel({ ...cfg, backendName: BLAS_BACKEND });
  }
  const override = (name: string, fn: (args: never, f: KernelFn) => Info) => {
    const cfg = tf.getKernel(name, BLAS_BACKEND);
    const fallback = cfg?.kernelFunc as unknown as KernelFn;
    if (cfg) tf.unregisterKernel(name, BLAS_BACKEND);
    tf.registerKernel({
      kernelName: name,
      backendName: BLAS_BACKEND,
      kernelFunc: ((a: never) => fn(a, fallback)) as unknown as tf.KernelFunc,
    });
  };
  override("BatchMatMul", batchMatMul);
  override("_FusedMatMul", fusedMatMul);
  registerFastKernels(BLAS_BACKEND);
  registerFusedKernels(BLAS_BACKEND);
}
