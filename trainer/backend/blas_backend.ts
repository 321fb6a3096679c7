/**
 * The `blas` TF.js backend: TF.js's `cpu` backend (tensor data in ordinary
 * JS TypedArrays, here SharedArrayBuffers when several threads run) with
 * its matmul kernels replaced by the system BLAS through FFI, its hot
 * generic kernels by fast_kernels.ts, plus the fused kernels of
 * fused_kernels.ts, all split over the threads of pool.ts. This module is
 * the backend object the kernels run on; `register.ts` registers it with
 * its kernels (so the kernel modules depend on it, never the reverse).
 *
 * Why the cpu backend's storage and not the wasm heap, as measured:
 * - BLAS reads and writes the TypedArrays in place through FFI, so no
 *   tensor is copied to reach it;
 * - JS memory has no 4 GiB ceiling: a 2.13B-parameter checkpoint (8.5 GB
 *   as float32) loads and generates at an 8.3 GiB peak RSS
 *   (`deno task bench --big`), which the wasm heap cannot hold at all, so a
 *   wasm-storage design would need this one anyway for real checkpoints;
 * - worker threads can share SharedArrayBuffer-backed TypedArrays, while
 *   the wasm backend runs single-threaded under Deno;
 * - the wasm backend's SIMD elementwise kernels are faster than JS loops,
 *   but before fusion a training step on wasm spent ~60% of its kernel time
 *   in matmuls and most of the rest in many small kernels and transposes
 *   around them; on this path that work is a few fused kernels with
 *   hand-written backward passes (`deno task bench --profile` shows both).
 */
import { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";
import type * as tf from "@tensorflow/tfjs";
import type { BlasLibrary } from "./blas_lib.ts";
import { Pool } from "./pool.ts";
import { gemmCut } from "./jobs.ts";
import { BufferCache } from "./buffer_cache.ts";

export const BLAS_BACKEND = "blas";

interface Info {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

/** Bytes of released buffers kept for reuse, at most. */
const CACHE_BYTES = 1 << 30;

/**
 * The cpu backend with a BLAS handle, a thread pool and a buffer cache;
 * data stays in JS TypedArrays.
 *
 * Buffer cache (buffer_cache.ts): the float32 buffers this backend
 * allocates for kernel outputs are taken back when their tensor is disposed
 * and handed out again. That is safe only while nothing else can see such a
 * buffer: `readSync` (what `dataSync()` returns) gives a copy of it, and a
 * buffer that any other kernel wraps into a tensor of its own (e.g. a view)
 * is never taken back.
 */
export class BlasBackend extends MathBackendCPU {
  /** Threads for the kernels (jobs.ts). */
  readonly pool: Pool;
  /** Buffers this backend allocated and may reuse once released. */
  private readonly recyclable = new WeakSet<ArrayBufferLike>();
  private readonly cache = new BufferCache(CACHE_BYTES);
  private emitting = false;

  constructor(readonly lib: BlasLibrary, threads: number) {
    super();
    this.pool = new Pool(threads, lib.sgemm, lib.path);
    // the cpu backend's first write prints an advert for tfjs-node
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * A float32 buffer for a kernel output: shared memory when the pool runs
   * in parallel, reused when one of this length was released. `zero: false`
   * when the kernel writes every element.
   */
  f32(n: number, zero = true): Float32Array {
    const cls = BufferCache.classOf(4 * n);
    const reuse = this.cache.take(cls);
    if (reuse) {
      const v = new Float32Array(reuse, 0, n);
      if (zero) v.fill(0);
      return v;
    }
    const buf = this.pool.parallel
      ? new SharedArrayBuffer(cls)
      : new ArrayBuffer(cls);
    this.recyclable.add(buf);
    return new Float32Array(buf, 0, n);
  }

  /** A zeroed float64 scratch array (partial sums), shared when parallel. */
  f64(n: number): Float64Array {
    return this.pool.parallel
      ? new Float64Array(new SharedArrayBuffer(8 * n))
      : new Float64Array(n);
  }

  /**
   * Data handed in by tf.tensor()/tf.variable(): float32 data moves into
   * shared memory (once) so that the pool's threads can read it, e.g. the
   * weights every matmul chunk reads.
   */
  override write(
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
  ): object {
    if (
      dtype === "float32" && this.pool.parallel &&
      values instanceof Float32Array &&
      !(values.buffer instanceof SharedArrayBuffer)
    ) {
      const v = this.f32(values.length, false);
      v.set(values);
      values = v;
    }
    return super.write(values, shape, dtype);
  }

  override makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values?: tf.backend_util.BackendValues | string[],
  ): tf.TensorInfo {
    // another kernel wrapping one of our buffers: it is no longer ours alone
    if (!this.emitting && ArrayBuffer.isView(values)) {
      this.recyclable.delete(values.buffer);
    }
    return super.makeTensorInfo(shape, dtype, values);
  }

  override readSync(dataId: object): tf.backend_util.BackendValues {
    const v = super.readSync(dataId);
    // callers may keep the array after disposing the tensor
    return ArrayBuffer.isView(v) && this.recyclable.has(v.buffer)
      ? (v as Float32Array).slice()
      : v;
  }

  override disposeData(dataId: object, force = false): boolean {
    const v = this.data.get(dataId)?.values;
    const released = super.disposeData(dataId, force);
    if (released && ArrayBuffer.isView(v) && this.recyclable.has(v.buffer)) {
      this.cache.give(v.buffer);
    }
    return released;
  }

  /**
   * out = op(a) @ op(b) + beta * out (beta 0 or 1) over the batch dims of
   * a and b (a size-1 batch repeats), in the fixed chunks of jobs.ts on the
   * pool's threads. `out` holds [batch, m, n].
   */
  gemmInto(
    a: Info,
    tA: boolean,
    b: Info,
    tB: boolean,
    out: Float32Array,
    beta: 0 | 1,
  ): void {
    const ra = a.shape.length, rb = b.shape.length;
    const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batch = Math.max(batchA, batchB);
    const cut = gemmCut(m, n, k);
    this.pool.run(
      "gemm",
      {
        A: this.values(a),
        B: this.values(b),
        C: out,
        m,
        n,
        k,
        tA,
        tB,
        batchA,
        batchB,
        beta,
        ...cut,
      },
      batch * cut.per,
      (batch * m * n * k) / 8,
    );
  }

  /** The stored values of a tensor (no copy: treat as read-only). */
  values(t: Info): Float32Array {
    return this.data.get(t.dataId).values as Float32Array;
  }

  /** A new float32 tensor owning `values` (from f32(); no copy). */
  output(values: Float32Array, shape: number[]): Info {
    this.emitting = true;
    try {
      return this.makeTensorInfo(shape, "float32", values) as Info;
    } finally {
      this.emitting = false;
    }
  }
}
