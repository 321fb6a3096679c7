/**
 * Tensor runtime bootstrap: picks the fastest TF.js backend this process can
 * load. Order: native `tfjs-node-gpu` / `tfjs-node` when importable, then the
 * wasm backend (SIMD; threads when the host supports them), then `cpu`.
 *
 * The native packages cannot be installed on machines whose install step may
 * not download a native library, so they are probed with a dynamic import and
 * skipped silently when absent.
 */
import * as tf from "@tensorflow/tfjs";

export type BackendName = "tensorflow" | "wasm" | "cpu";

export interface RuntimeOptions {
  /** Force one backend instead of probing (`STAGE2_BACKEND` env also works). */
  backend?: BackendName;
  /** wasm thread count; only honoured when the host supports wasm threads. */
  threads?: number;
  /** Where to print the one-line "backend: ..." notice; defaults to stderr. */
  log?: (line: string) => void;
}

export interface RuntimeInfo {
  backend: string;
  simd: boolean;
  threads: number;
}

let active: RuntimeInfo | undefined;

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

async function tryWasm(threads: number): Promise<boolean> {
  try {
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
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

/**
 * Initialise TF.js once per process and report what was chosen.
 *
 * @example
 * const info = await initRuntime({ log: () => {} });
 * console.log(info.backend); // "wasm" on these machines
 */
export async function initRuntime(
  opts: RuntimeOptions = {},
): Promise<RuntimeInfo> {
  if (active) return active;
  const log = opts.log ?? ((l: string) => console.error(l));
  const forced = opts.backend ??
    (Deno.env.get("STAGE2_BACKEND") as BackendName | undefined);
  const threads = opts.threads ??
    Number(Deno.env.get("STAGE2_THREADS") ?? navigator.hardwareConcurrency);
  let ok = false;
  if (!forced || forced === "tensorflow") ok = await tryNative();
  if (!ok && (!forced || forced === "wasm")) ok = await tryWasm(threads);
  if (!ok) ok = await tf.setBackend("cpu");
  if (!ok) throw new Error("no TF.js backend could be initialised");
  await tf.ready();
  const backend = tf.getBackend();
  const simd = backend === "wasm" && tf.env().getBool("WASM_HAS_SIMD_SUPPORT");
  const mt = backend === "wasm" &&
    tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT");
  active = { backend, simd, threads: mt ? threads : 1 };
  log(
    `backend: ${backend}${
      backend === "wasm" ? ` (simd=${simd}, threads=${active.threads})` : ""
    }`,
  );
  return active;
}

export { tf };
