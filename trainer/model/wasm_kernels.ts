/**
 * Faster replacements for TF.js wasm-backend kernels that dominate a
 * training step of the model (measured, tfjs-backend-wasm 4.22.0):
 *
 * - `Slice` (and `Unpack`/`SplitV`, built on it) copies the WHOLE input tensor out
 *   of the wasm heap (`readSync`) on every call, so splitting a tensor into n
 *   chunks costs n full copies (200 ms to unstack a [16, 1024, 32] tensor).
 *   Here the input is read through a heap view and only the slice is copied.
 * - `Identity` copies its input; TF.js data is immutable (every kernel writes
 *   a new output, and Variable.assign swaps the data id), so sharing the data
 *   with a reference count — what `Reshape` already does — is equivalent.
 *
 * Semantics are unchanged (bit-identical outputs); only where the bytes are
 * read from differs. Installed once, only when the active backend is wasm.
 */
import { tf } from "../runtime.ts";
import { stridedCopy, stridesOf } from "../backend/fast_kernels.ts";

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

function slice(args: KernelArgs, original: KernelFn): HeapTensor {
  const { x } = args.inputs;
  if (x.dtype === "string") return original(args);
  const [begin, size] = tf.slice_util.parseSliceParams(
    x as unknown as tf.TensorInfo,
    args.attrs.begin as number[],
    args.attrs.size as number[],
  );
  return sliceCore(args.backend, x, begin, size);
}

function sliceCore(
  backend: WasmBackendLike,
  x: HeapTensor,
  begin: number[],
  size: number[],
): HeapTensor {
  const out = backend.makeOutput(size, x.dtype);
  // views taken after makeOutput: an allocation may grow (detach) the heap
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const strides = stridesOf(x.shape);
  let off = 0;
  for (let i = 0; i < begin.length; i++) off += begin[i] * strides[i];
  stridedCopy(dst, 0, stridesOf(size), src, off, strides, size);
  return out;
}

function splitV(args: KernelArgs, original: KernelFn): HeapTensor[] {
  const { x } = args.inputs;
  if (x.dtype === "string") return original(args) as unknown as HeapTensor[];
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
    const out = sliceCore(args.backend, x, [...begin], size);
    begin[axis] += s;
    return out;
  });
}

function unpack(args: KernelArgs, original: KernelFn): HeapTensor[] {
  const x = (args.inputs as unknown as { value: HeapTensor }).value;
  if (x.dtype === "string") return original(args) as unknown as HeapTensor[];
  let axis = args.attrs.axis as number;
  if (axis < 0) axis += x.shape.length;
  const outShape = x.shape.filter((_, i) => i !== axis);
  const size = [...x.shape];
  size[axis] = 1;
  return Array.from({ length: x.shape[axis] }, (_, i) => {
    const begin = new Array(x.shape.length).fill(0);
    begin[axis] = i;
    const out = sliceCore(args.backend, x, begin, size);
    return { ...out, shape: outShape };
  });
}

function identity(args: KernelArgs, original: KernelFn): HeapTensor {
  const { x } = args.inputs;
  if (x.dtype === "string") return original(args);
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Replace the wasm Slice, SplitV, Unpack and Identity kernels (idempotent; no-op on other backends). */
export function installWasmKernelFixes(): void {
  if (installed || tf.getBackend() !== "wasm") return;
  installed = true;
  const fixes: [
    string,
    (a: KernelArgs, o: KernelFn) => HeapTensor | HeapTensor[],
  ][] = [
    ["Slice", slice],
    ["SplitV", splitV],
    ["Unpack", unpack],
    ["Identity", identity],
  ];
  for (const [name, impl] of fixes) {
    const cfg = tf.getKernel(name, "wasm");
    if (!cfg) continue;
    const original = cfg.kernelFunc as unknown as KernelFn;
    tf.unregisterKernel(name, "wasm");
    tf.registerKernel({
      ...cfg,
      kernelFunc: ((a: KernelArgs) =>
        impl(a, original)) as unknown as tf.KernelFunc,
    });
  }
}
