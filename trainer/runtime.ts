/**
 * Tensor runtime bootstrap: picks the fastest TF.js backend this process can
 * load and says which one and why in one start-up line. Order:
 *
 * 1. native `tfjs-node-gpu` / `tfjs-node` when importable (they cannot be
 *    installed on machines whose npm install may not download a native
 *    library, so they are probed with a dynamic import);
 * 2. `blas`: tensors in JS memory, matmuls on the system BLAS through FFI
 *    (OpenBLAS / Accelerate, see backend/blas_lib.ts) and fused kernels for
 *    the rest of a training step (backend/fused_kernels.ts);
 * 3. `wasm` (SIMD, single-threaded under Deno; heap capped at 4 GiB);
 * 4. `cpu`, the last resort.
 *
 * `STAGE2_BACKEND=tensorflow|blas|wasm|cpu` forces one; `training.threads`
 * or `STAGE2_THREADS` sets the thread count of whichever path is active
 * (the blas path's worker threads; wasm threads where the host supports
 * them). A bad value of either is an `InputError` (exit 2).
 */
import * as tf from "@tensorflow/tfjs";
import { probeBlas } from "./backend/blas_lib.ts";
import { BLAS_BACKEND, BlasBackend } from "./backend/blas_backend.ts";
import { registerBlasBackend } from "./backend/register.ts";
import { InputError } from "./errors.ts";

export type BackendName = "tensorflow" | "blas" | "wasm" | "cpu";
const NAMES: BackendName[] = ["tensorflow", "blas", "wasm", "cpu"];

export interface RuntimeOptions {
  /** Force one backend instead of probing (`STAGE2_BACKEND` env also works). */
  backend?: BackendName;
  /** Thread count (BLAS threads; wasm threads where the host supports them). */
  threads?: number;
  /** Where to print the one-line "backend: ..." notice; defaults to stderr. */
  log?: (line: string) => void;
}

export interface RuntimeInfo {
  backend: string;
  simd: boolean;
  threads: number;
  /** What the start-up line says after the backend name: library, or why not. */
  detail: string;
}

let active: RuntimeInfo | undefined;
let blasNote = "";
/** The thread count asked for at initialisation (used when switching). */
let requestedThreads = 1;

async function tryNative(): Promise<boolean> {
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    try {
      // A computed specifier keeps `deno check` from requiring the package.
      await import(pkg);
      if (await tf.setBackend("tensorflow")) return true;
    } catch {
      // not installed here: fall through to the next candidate
    }
  }
  return false;
}

function registerBlas(threads: number): boolean {
  const p = probeBlas();
  if (!p.ok) {
    blasNote = p.reason;
    return false;
  }
  registerBlasBackend(p.lib, threads);
  blasNote = `${p.lib.name} at ${p.lib.path}, ${threads} thread${
    threads === 1 ? "" : "s"
  }`;
  return true;
}

async function tryBlas(threads: number): Promise<boolean> {
  if (!registerBlas(threads)) return false;
  try {
    return await tf.setBackend(BLAS_BACKEND);
  } catch (e) {
    blasNote = `the blas backend failed to start (${(e as Error).message})`;
    return false;
  }
}

let wasmLoaded = false;

async function loadWasm(threads: number): Promise<void> {
  if (wasmLoaded) return;
  const entry = import.meta.resolve(
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js",
  );
  // The wasm loader locates its .wasm binaries through `__dirname`, which
  // Deno does not define for ES modules.
  const g = globalThis as unknown as { __dirname?: string };
  g.__dirname = decodeURIComponent(new URL("./", entry).pathname);
  const wasm = await import(
    "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.fesm.js"
  );
  wasm.setThreadsCount(Math.max(1, threads));
  wasmLoaded = true;
}

async function tryWasm(threads: number): Promise<boolean> {
  try {
    await loadWasm(threads);
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

function describe(backend: string, threads: number): RuntimeInfo {
  const simd = backend === "wasm" && tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const mt = backend === "wasm" &&
    tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT");
  let detail = "";
  let used = 1;
  if (backend === BLAS_BACKEND) {
    detail = blasNote;
    used = threads;
  } else if (backend === "wasm" || backend === "cpu") {
    used = mt ? threads : 1;
    const why = blasNote ? `; ${blasNote}` : "";
    detail = backend === "wasm"
      ? `simd=${simd}, threads=${used}${why}`
      : `last resort${why}`;
  }
  return { backend, simd, threads: used, detail };
}

function parseBackend(v: string | undefined): BackendName | undefined {
  if (v === undefined || v === "") return undefined;
  if (!NAMES.includes(v as BackendName)) {
    throw new InputError(
      `STAGE2_BACKEND=${v} is not one of ${NAMES.join(", ")}`,
    );
  }
  return v as BackendName;
}

/**
 * Initialise TF.js once per process and report what was chosen with one
 * line: `backend: blas (OpenBLAS 0.3.21 at /usr/lib/..., 2 threads)` or
 * `backend: wasm (simd=true, threads=1; no BLAS found (...); install ...)`.
 *
 * @example
 * const info = await initRuntime({ log: () => {} });
 * console.log(info.backend); // "blas" where OpenBLAS is installed
 */
export async function initRuntime(
  opts: RuntimeOptions = {},
): Promise<RuntimeInfo> {
  // the settings are checked on every call: a bad one is an input error
  const forced = opts.backend ?? parseBackend(Deno.env.get("STAGE2_BACKEND"));
  const env = Deno.env.get("STAGE2_THREADS");
  const threads = opts.threads ??
    (env !== undefined && env !== ""
      ? Number(env)
      : navigator.hardwareConcurrency);
  if (!(Number.isInteger(threads) && threads >= 1)) {
    throw new InputError(
      `thread count must be a positive integer, got ${
        opts.threads ?? JSON.stringify(env)
      } (${
        opts.threads === undefined ? "STAGE2_THREADS" : "training.threads"
      })`,
    );
  }
  if (active) return active;
  const log = opts.log ?? ((l: string) => console.error(l));
  requestedThreads = threads;
  // a forced backend that cannot start falls back to wasm, then cpu
  const order: BackendName[] = forced
    ? [
      forced,
      ...(["wasm", "cpu"] as BackendName[]).filter((n) => n !== forced),
    ]
    : NAMES;
  let ok = false;
  for (const name of order) {
    if (name === "tensorflow") ok = await tryNative();
    else if (name === "blas") ok = await tryBlas(threads);
    else if (name === "wasm") ok = await tryWasm(threads);
    else ok = await tf.setBackend("cpu");
    if (ok) break;
  }
  if (!ok) throw new Error("no TF.js backend could be initialised");
  await tf.ready();
  active = describe(tf.getBackend(), threads);
  log(
    `backend: ${active.backend}${active.detail ? ` (${active.detail})` : ""}`,
  );
  if (forced && forced !== active.backend) {
    log(`(STAGE2_BACKEND=${forced} was asked for but could not start)`);
  }
  return active;
}

/**
 * Switch the process to another backend after `initRuntime` (benchmarks
 * compare paths side by side in one process). Returns false when that
 * backend cannot start here. Tensors made on the previous backend move
 * lazily when next used; create models after switching.
 */
export async function useBackend(name: BackendName): Promise<boolean> {
  if (!active) await initRuntime({ log: () => {} });
  let ok: boolean;
  if (name === "blas") ok = await tryBlas(requestedThreads);
  else if (name === "wasm") ok = await tryWasm(1);
  else if (name === "tensorflow") ok = await tryNative();
  else ok = await tf.setBackend("cpu");
  if (ok) await tf.ready();
  return ok;
}

/**
 * A zeroed Float32Array of `n` values for data that becomes a tensor (e.g.
 * checkpoint weights): in shared memory when the blas backend runs several
 * threads, so the tensor is created without a copy.
 */
export function tensorStorage(n: number): Float32Array {
  const b = tf.backend();
  return b instanceof BlasBackend && b.pool.parallel
    ? new Float32Array(new SharedArrayBuffer(4 * n))
    : new Float32Array(n);
}

export { tf };
