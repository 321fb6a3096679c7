/**
 * The system BLAS, reached through `Deno.dlopen`: OpenBLAS on Linux (Debian /
 * Ubuntu `libopenblas0-pthread`), Accelerate on macOS, or any library named
 * by `STAGE2_BLAS=/path/to/lib` that exports `cblas_sgemm`.
 *
 * Where the library comes from: on Linux the sonames are handed to the
 * dynamic loader, which resolves them through the system's ld cache (what
 * `ldconfig -p` lists) and library path; when no soname loads, the entries
 * of `ldconfig -p` whose name contains "openblas" are tried. The path that
 * was actually mapped is read back from `/proc/self/maps` for the start-up
 * line. Nothing here names a build machine's path.
 *
 * BLAS runs single-threaded: the blas backend splits products into fixed
 * chunks over its own threads (pool.ts), which keeps results independent of
 * the thread count and leaves no BLAS threads spinning while the JS kernels
 * use the cores. (Accelerate reads VECLIB_MAXIMUM_THREADS, set to 1 here
 * unless the user set it.)
 */

/** CBLAS enum values (same in OpenBLAS and Accelerate). */
const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
} as const;

const OPENBLAS_SYMBOLS = {
  openblas_get_config: { parameters: [], result: "pointer" },
  openblas_set_num_threads: { parameters: ["i32"], result: "void" },
} as const;

type SgemmFn = (
  order: number,
  ta: number,
  tb: number,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: Float32Array,
  lda: number,
  b: Float32Array,
  ldb: number,
  beta: number,
  c: Float32Array,
  ldc: number,
) => void;

export interface BlasLibrary {
  /** e.g. "OpenBLAS 0.3.21" or "Accelerate". */
  name: string;
  /** The file that was loaded. */
  path: string;
  /**
   * C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major, on views that
   * start at the given element offsets (zero-copy: the TypedArrays' memory
   * is passed as is). `lda`/`ldb`/`ldc` are row strides in elements.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    aOff: number,
    lda: number,
    b: Float32Array,
    bOff: number,
    ldb: number,
    beta: number,
    c: Float32Array,
    cOff: number,
    ldc: number,
  ): void;
}

/** Why no BLAS could be loaded (for the start-up line), or the library. */
export type BlasProbe =
  | { ok: true; lib: BlasLibrary }
  | { ok: false; reason: string };

let probed: BlasProbe | undefined;

/** Library files to try, in order, with where each candidate came from. */
function candidates(): string[] {
  const override = Deno.env.get("STAGE2_BLAS");
  if (override) return [override];
  if (Deno.build.os === "darwin") {
    return [
      "/System/Library/Frameworks/Accelerate.framework/Accelerate",
      "libopenblas.dylib",
    ];
  }
  if (Deno.build.os === "windows") return ["libopenblas.dll", "openblas.dll"];
  // sonames first: the dynamic loader resolves them through the ld cache
  return ["libopenblas.so.0", "libopenblas.so", ...ldconfigOpenblas()];
}

/** Paths of OpenBLAS entries in the ld cache (`ldconfig -p`), if the tool runs. */
function ldconfigOpenblas(): string[] {
  for (const cmd of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    try {
      const out = new Deno.Command(cmd, { args: ["-p"], stderr: "null" })
        .outputSync();
      if (!out.success) continue;
      return new TextDecoder().decode(out.stdout).split("\n")
        .filter((l) => /openblas/i.test(l))
        .map((l) => l.split("=>").at(-1)!.trim())
        .filter((p) => p.startsWith("/"));
    } catch {
      // not on PATH / not permitted: try the next spelling
    }
  }
  return [];
}

/** The mapped file whose name contains `hint` (Linux), else `fallback`. */
function mappedPath(hint: RegExp, fallback: string): string {
  try {
    const maps = Deno.readTextFileSync("/proc/self/maps");
    for (const line of maps.split("\n")) {
      const p = line.slice(line.indexOf("/"));
      if (line.includes("/") && hint.test(p)) return p.trim();
    }
  } catch {
    // no /proc (macOS): report what was asked for
  }
  return fallback;
}

function open(file: string): BlasLibrary {
  if (
    Deno.build.os === "darwin" && Deno.env.get("VECLIB_MAXIMUM_THREADS") ===
      undefined
  ) Deno.env.set("VECLIB_MAXIMUM_THREADS", "1");
  const lib = Deno.dlopen(file, SYMBOLS);
  let name = "BLAS", path = file;
  let ob: Deno.DynamicLibrary<typeof OPENBLAS_SYMBOLS> | null = null;
  try {
    ob = Deno.dlopen(file, OPENBLAS_SYMBOLS);
  } catch {
    // not OpenBLAS (Accelerate, BLIS, MKL): no thread or version calls
  }
  if (ob) {
    const cfg = new Deno.UnsafePointerView(
      ob.symbols.openblas_get_config()!,
    ).getCString();
    const m = /OpenBLAS\s+([\d.]+)/.exec(cfg);
    name = m ? `OpenBLAS ${m[1]}` : "OpenBLAS";
    ob.symbols.openblas_set_num_threads(1);
    path = mappedPath(/openblas/i, file);
  } else if (/Accelerate/.test(file)) {
    // thread count follows VECLIB_MAXIMUM_THREADS, read by the framework itself
    name = "Accelerate";
  } else {
    path = mappedPath(new RegExp(file.split("/").at(-1)!.split(".")[0]), file);
  }
  return { name, path, sgemm: wrap(lib) };
}

/** The offset-taking sgemm over the library's cblas_sgemm. */
function wrap(lib: Deno.DynamicLibrary<typeof SYMBOLS>): BlasLibrary["sgemm"] {
  const sgemm = lib.symbols.cblas_sgemm as unknown as SgemmFn;
  const view = (x: Float32Array, off: number) =>
    off === 0 ? x : x.subarray(off);
  return (
    ta,
    tb,
    m,
    n,
    k,
    alpha,
    a,
    aOff,
    lda,
    b,
    bOff,
    ldb,
    beta,
    c,
    cOff,
    ldc,
  ) => {
    if (m === 0 || n === 0) return;
    sgemm(
      ROW_MAJOR,
      ta ? TRANS : NO_TRANS,
      tb ? TRANS : NO_TRANS,
      m,
      n,
      k,
      alpha,
      view(a, aOff),
      lda,
      view(b, bOff),
      ldb,
      beta,
      view(c, cOff),
      ldc,
    );
  };
}

/**
 * sgemm of the library at `path` (already probed by the main thread), for
 * a worker thread: the library's thread settings are process-wide and are
 * left as the main thread set them.
 */
export function openSgemm(path: string): BlasLibrary["sgemm"] {
  return wrap(Deno.dlopen(path, SYMBOLS));
}

/**
 * Load the system BLAS once per process. Never throws: a missing
 * library, a missing symbol or no FFI permission gives `{ ok: false }` with
 * the reason.
 *
 * @example
 * const p = probeBlas(2);
 * if (p.ok) console.log(p.lib.name, p.lib.path);
 */
export function probeBlas(): BlasProbe {
  if (probed) return probed;
  const tried: string[] = [];
  let why = "";
  for (const file of candidates()) {
    try {
      probed = { ok: true, lib: open(file) };
      return probed;
    } catch (e) {
      if (
        e instanceof Deno.errors.NotCapable ||
        e instanceof Deno.errors.PermissionDenied
      ) {
        probed = {
          ok: false,
          reason: "FFI is not permitted (run deno with --allow-ffi or -A)",
        };
        return probed;
      }
      tried.push(file);
      // "Could not open library: Could not open library: <dlerror>"
      why ||= (e as Error).message.split("\n")[0]
        .replace(/^(Could not open library: )+/, "");
    }
  }
  const override = Deno.env.get("STAGE2_BLAS");
  probed = {
    ok: false,
    reason: override
      ? `STAGE2_BLAS=${override} could not be loaded: ${why}; fix or unset STAGE2_BLAS`
      : `no BLAS found: tried ${
        tried.join(", ")
      }: ${why}; install libopenblas0-pthread or set STAGE2_BLAS=/path/to/libopenblas.so`,
  };
  return probed;
}
