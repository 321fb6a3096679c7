/**
 * Registers the `blas` TF.js backend (blas_backend.ts) with its kernels:
 * every `cpu` kernel under the new name, then over them the BLAS matmuls
 * below, the faster generic kernels of fast_kernels.ts and the fused
 * kernels of fused_kernels.ts.
 */
import * as tf from "@tensorflow/tfjs";
import type { BlasLibrary } from "./blas_lib.ts";
import { BLAS_BACKEND, BlasBackend } from "./blas_backend.ts";
import { registerFastKernels } from "./fast_kernels.ts";
import { registerFusedKernels } from "./fused_kernels.ts";

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
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
 * BatchMatMul on BLAS: sgemm calls on fixed chunks of each batch entry,
 * spread over the pool's threads, the transpose flags passed through (no
 * transposed copies); batch dims broadcast like TF.js's cpu kernel (a size-1
 * batch repeats).
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
  const batch = Math.max(
    sizeOf(a.shape.slice(0, -2)),
    sizeOf(b.shape.slice(0, -2)),
  );
  const out = backend.f32(batch * m * n, k === 0);
  backend.gemmInto(a, tA, b, tB, out, 0);
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
export function registerBlasBackend(lib: BlasLibrary, threads: number): void {
  if (registered) return;
  registered = true;
  tf.registerBackend(BLAS_BACKEND, () => new BlasBackend(lib, threads), 3);
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
