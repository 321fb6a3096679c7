/**
 * Faster replacements for three TF.js wasm-backend kernels that dominate a
 * training step of the model (measured, tfjs-backend-wasm 4.22.0):
 *
 * - `Slice` (also behind `Unpack`/`SplitV`) copies the WHOLE input tensor out
 *   of the wasm heap (`readSync`) on every call, so splitting a tensor into n
 *   chunks costs n full copies (200 ms to unstack a [16, 1024, 32] tensor).
 *   Here the input is read through a heap view and only the slice is copied.
 * - `Transpose` of a large rank-2 matrix walks memory element by element
 *   (~25 ns/element); a cache-blocked loop is ~10x faster. Other ranks keep
 *   the original kernel.
 * - `Identity` copies its input; TF.js data is immutable (every kernel writes
 *   a new output, and Variable.assign swaps the data id), so sharing the data
 *   with a reference count — what `Reshape` already does — is equivalent.
 *
 * Semantics are unchanged (bit-identical outputs); only where the bytes are
 * read from differs. Installed once, only when the active backend is wasm.
 */
import { tf } from "../runtime.ts";

interface HeapTensor {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): HeapTensor;
  typedArrayFromHeap(t: HeapTensor): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
}

interface KernelArgs {
  inputs: { x: HeapTensor };
  backend: WasmBackendLike;
  attrs: Record<string, unknown>;
}

type KernelFn = (args: KernelArgs) => HeapTensor;

let installed = false;

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function stridesOf(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

function slice(args: KernelArgs, original: KernelFn): HeapTensor {
  const { x } = args.inputs;
  if (x.dtype === "string") return original(args);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.TensorInfo,
    args.attrs.begin as number[],
    args.attrs.size as number[],
  );
  const out = args.backend.makeOutput(size, x.dtype);
  // views taken after makeOutput: an allocation may grow (detach) the heap
  const src = args.backend.typedArrayFromHeap(x);
  const dst = args.backend.typedArrayFromHeap(out);
  const n = sizeOf(size);
  if (n === 0) return out;
  const strides = stridesOf(x.shape);
  const rank = x.shape.length;
  if (rank === 0) {
    dst[0] = src[0];
    return out;
  }
  // copy runs along the innermost axis; walk the outer axes like an odometer
  const run = size[rank - 1];
  const idx = new Array(rank - 1).fill(0);
  let o = 0;
  for (;;) {
    let off = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
    dst.set(src.subarray(off, off + run), o);
    o += run;
    let d = rank - 2;
    while (d >= 0 && ++idx[d] === size[d]) idx[d--] = 0;
    if (d < 0) break;
  }
  return out;
}

const BLOCK = 32;

function transpose(args: KernelArgs, original: KernelFn): HeapTensor {
  const { x } = args.inputs;
  const perm = args.attrs.perm as number[];
  const big = x.shape.map((d, i) => [d, i]).filter(([d]) => d !== 1).map(([, i]) => i);
  const order = perm.filter((p) => x.shape[p] !== 1);
  const isSwap2d = big.length === 2 && order.length === 2 && order[0] === big[1] && order[1] === big[0];
  if (x.dtype === "string" || !isSwap2d || sizeOf(x.shape) < 4096) return original(args);
  const rows = x.shape[big[0]], cols = x.shape[big[1]];
  const out = args.backend.makeOutput(perm.map((p) => x.shape[p]), x.dtype);
  const src = args.backend.typedArrayFromHeap(x);
  const dst = args.backend.typedArrayFromHeap(out);
  for (let r0 = 0; r0 < rows; r0 += BLOCK) {
    const r1 = Math.min(rows, r0 + BLOCK);
    for (let c0 = 0; c0 < cols; c0 += BLOCK) {
      const c1 = Math.min(cols, c0 + BLOCK);
      for (let r = r0; r < r1; r++) {
        const rowOff = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[rowOff + c];
      }
    }
  }
  return out;
}

function identity(args: KernelArgs, original: KernelFn): HeapTensor {
  const { x } = args.inputs;
  if (x.dtype === "string") return original(args);
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Replace the wasm Slice, Transpose and Identity kernels (idempotent; no-op on other backends). */
export function installWasmKernelFixes(): void {
  if (installed || tf.getBackend() !== "wasm") return;
  installed = true;
  const fixes: [string, (a: KernelArgs, o: KernelFn) => HeapTensor][] = [
    ["Slice", slice],
    ["Transpose", transpose],
    ["Identity", identity],
  ];
  for (const [name, impl] of fixes) {
    const cfg = tf.getKernel(name, "wasm");
    if (!cfg) continue;
    const original = cfg.kernelFunc as unknown as KernelFn;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      ...cfg,
      kernelFunc: ((a: KernelArgs) => impl(a, original)) as unknown as tf.KernelFunc,
    });
  }
}
