/**
 * `deno task bench`: speed and memory figures of this machine, measured side
 * by side in one process so the ratios compare like with like. The compute
 * paths (the `blas` backend and the `wasm` one) run the same workloads one
 * after the other:
 *
 * - matmul GFLOP/s: a square 1024^3 product and a model-shaped one;
 * - forward+backward tokens/s of the packed tiny-model workload
 *   (`model_bench.ts`), and its GFLOP/s;
 * - the real training loop on a quickstart-sized Stage-1 config: training
 *   tokens/s, seconds per optimizer step, and peak resident memory (the
 *   peak is reset before each path's loop);
 * - generation tokens/s with the KV cache and by recomputation;
 * - the checkers: `normalize-check` over a generated 2,000-file tree, and
 *   `validate-spec` next to the official OpenSpec CLI on a generated
 *   250-item repository (single call and `--all`).
 *
 * Flags: `--quick` shrinks every workload (for a smoke run); `--json` prints
 * only the JSON object; `--no-checkers` skips the checker section (it needs
 * the npm registry to install the official OpenSpec CLI once);
 * `--paths blas,wasm` picks the paths; `--profile` prints only the top
 * kernels of one training step on each path; `--big` runs only the
 * 2B-parameter load-and-generate benchmark (`big_bench.ts`).
 */
import { join } from "node:path";
import {
  type BackendName,
  initRuntime,
  type RuntimeInfo,
  tf,
  useBackend,
} from "../trainer/runtime.ts";
import { loadConfig } from "../trainer/config/mod.ts";
import { train } from "../trainer/loop/train.ts";
import {
  benchForwardBackward,
  benchGeneration,
  benchMatmul,
  DEFAULT_WORKLOAD,
  type GenerationBenchResult,
  profileStep,
  type TrainBenchResult,
} from "./model_bench.ts";
import {
  benchNormalizeCheck,
  benchNormalizeCheckCli,
} from "./normalize_check_bench.ts";
import { benchValidateSpec } from "./validate_spec_bench.ts";
import { peakRssBytes, resetPeakRss } from "./rss.ts";

export interface LoopBench {
  steps: number;
  tokensPerSecond: number;
  secondsPerStep: number;
  samplesPerStep: number;
  peakRssMiB: number | null;
}

/**
 * Trains `steps` optimizer updates of the Stage-1 preset (same model, data,
 * micro-batch and packing as the quickstart's Stage 1) in a temp folder;
 * tokens/s and seconds/step are those of the second half of the steps.
 */
export async function benchTrainingLoop(steps: number): Promise<LoopBench> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-bench-" });
  try {
    const preset = decodeURIComponent(
      new URL("../configs/stage1_sft.yaml", import.meta.url).pathname,
    );
    const cfg = await loadConfig(preset, [
      `training.output_dir=${join(dir, "run")}`,
      `training.max_steps=${steps}`,
      // the last logged window is the second half: warm-up (JIT, worker
      // start) stays out of the figures
      `training.logging_steps=${Math.max(1, Math.floor(steps / 2))}`,
      "training.eval_steps=0",
      "training.save_steps=0",
      "training.warmup_steps=0",
      // the micro-batch the README's figures were measured with
      "training.micro_batch_size=4",
      "data.synth.n_val=0",
    ]);
    await train({
      config: cfg,
      log: () => {},
      progressTty: false,
      skipRolloutEval: true,
    });
    const lines = (await Deno.readTextFile(join(dir, "run", "metrics.jsonl")))
      .trim().split("\n").map((l) => JSON.parse(l));
    const last = lines.filter((l) => l.kind === "train").at(-1);
    const rss = peakRssBytes();
    return {
      steps,
      tokensPerSecond: last.timing.tokens_per_s,
      secondsPerStep: last.tokens / last.timing.tokens_per_s,
      samplesPerStep: cfg.training.micro_batch_size *
        cfg.training.gradient_accumulation_steps,
      peakRssMiB: rss === null ? null : rss / 2 ** 20,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function checkerLines(c: {
  normalize_check: { files: number; seconds: number };
  normalize_check_cli: { seconds: number };
  validate_spec: {
    items: number;
    officialAllMs: number;
    stage2AllMs: number;
    officialSingleMs: number;
    stage2SingleMs: number;
    verdictMismatches: number;
  };
}): string[] {
  const v = c.validate_spec;
  const ms = (x: number) => `${(x / 1000).toFixed(2)} s`;
  return [
    `normalize-check           ${c.normalize_check.files} files in ${
      c.normalize_check.seconds.toFixed(2)
    } s in-process, ${c.normalize_check_cli.seconds.toFixed(2)} s as a CLI`,
    `validate-spec --all       ${ms(v.stage2AllMs)} vs official ${
      ms(v.officialAllMs)
    } (${
      (v.officialAllMs / v.stage2AllMs).toFixed(1)
    }x, ${v.items} items, ${v.verdictMismatches} verdict mismatches)`,
    `validate-spec one item    ${ms(v.stage2SingleMs)} vs official ${
      ms(v.officialSingleMs)
    } (${(v.officialSingleMs / v.stage2SingleMs).toFixed(1)}x)`,
  ];
}

/** What one compute path measured. */
export interface PathBench {
  backend: string;
  detail: string;
  threads: number;
  matmul: {
    square: { n: number; gflops: number };
    model: { shape: [number, number, number]; gflops: number };
  };
  forwardBackward: TrainBenchResult;
  loop: LoopBench;
  generation: GenerationBenchResult;
}

/** Runs every model workload on the active backend (the loop first, for its peak RSS). */
async function benchPath(
  info: RuntimeInfo,
  quick: boolean,
  say: (s: string) => void,
): Promise<PathBench> {
  const name = tf.getBackend();
  say(`[${name}] training loop, quickstart-sized steps ...`);
  resetPeakRss();
  const loop = await benchTrainingLoop(quick ? 3 : 12);
  say(`[${name}] matmul ...`);
  const n = quick ? 512 : 1024;
  const square = await benchMatmul(n, n, n, quick ? 2 : 5);
  const shape: [number, number, number] = [4096, 128, 384];
  const model = await benchMatmul(...shape, quick ? 2 : 5);
  say(`[${name}] forward+backward over packed rows ...`);
  const fb = await benchForwardBackward(
    undefined,
    quick ? { rows: 2, samplesPerRow: 2, sampleLen: 128 } : DEFAULT_WORKLOAD,
    quick ? 1 : 2,
  );
  say(`[${name}] generation with and without KV cache ...`);
  const generation = await benchGeneration(undefined, quick ? 16 : 128);
  return {
    backend: name,
    detail: name === info.backend ? info.detail : "",
    threads: name === "blas" ? info.threads : 1,
    matmul: {
      square: { n, gflops: square.wall },
      model: { shape, gflops: model.wall },
    },
    forwardBackward: fb,
    loop,
    generation,
  };
}

/** The side-by-side table: one column per path, then the first path's gain. */
function table(paths: PathBench[]): string[] {
  const f = (v: number, d = 1) => v.toFixed(d);
  const rows: [string, (p: PathBench) => number, number, boolean][] = [
    [
      `matmul ${paths[0].matmul.square.n}^3 GFLOP/s`,
      (p) => p.matmul.square.gflops,
      1,
      true,
    ],
    [
      `matmul ${paths[0].matmul.model.shape.join("x")} GFLOP/s`,
      (p) => p.matmul.model.gflops,
      1,
      true,
    ],
    [
      "forward+backward tokens/s",
      (p) => p.forwardBackward.tokensPerSecond,
      0,
      true,
    ],
    ["forward+backward GFLOP/s", (p) => p.forwardBackward.gflops, 1, true],
    [
      "forward+backward s/step",
      (p) => p.forwardBackward.secondsPerStep,
      3,
      false,
    ],
    ["training loop tokens/s", (p) => p.loop.tokensPerSecond, 0, true],
    ["training loop s/step", (p) => p.loop.secondsPerStep, 3, false],
    [
      "generation KV tokens/s",
      (p) => p.generation.cachedTokensPerSecond,
      1,
      true,
    ],
    ["peak RSS MiB (loop)", (p) => p.loop.peakRssMiB ?? NaN, 0, false],
  ];
  const w = 30;
  const head = "".padEnd(w) +
    paths.map((p) => p.backend.padStart(12)).join("") +
    // "gain": how many times better the first path is (a higher rate, or
    // less time or memory), so no row reads as a plain quotient
    (paths.length > 1 ? `${paths[0].backend} gain`.padStart(14) : "");
  return [
    head,
    ...rows.map(([label, get, d, higherIsBetter]) => {
      const vals = paths.map(get);
      let ratio = "";
      if (paths.length > 1) {
        // the ratio reads as "how many times better" for every row
        const r = higherIsBetter ? vals[0] / vals[1] : vals[1] / vals[0];
        ratio = `${f(r, 2)}x`.padStart(14);
      }
      return label.padEnd(w) + vals.map((v) => f(v, d).padStart(12)).join("") +
        ratio;
    }),
  ];
}

function profileLines(
  backend: string,
  p: {
    totalMs: number;
    kernels: { kernel: string; ms: number; calls: number; share: number }[];
  },
  top: number,
): string[] {
  return [
    `[${backend}] one training step: ${
      p.totalMs.toFixed(0)
    } ms in kernels (best of 2 per kernel); top ${top}:`,
    ...p.kernels.slice(0, top).map((k) =>
      `  ${k.kernel.padEnd(26)}${k.ms.toFixed(1).padStart(9)} ms ${
        String(k.calls).padStart(5)
      } calls ${(100 * k.share).toFixed(1).padStart(5)}%`
    ),
  ];
}

/** The paths named by `--paths a,b` (default: blas then wasm), those that start. */
async function choosePaths(
  say: (s: string) => void,
): Promise<BackendName[]> {
  const i = Deno.args.indexOf("--paths");
  const asked = (i >= 0 ? Deno.args[i + 1] ?? "" : "blas,wasm").split(",")
    .filter(Boolean) as BackendName[];
  const ok: BackendName[] = [];
  for (const p of asked) {
    if (await useBackend(p)) ok.push(p);
    else say(`path ${p} is not available here; skipped`);
  }
  if (ok.length === 0) {
    console.error("bench: none of the requested paths can start");
    Deno.exit(2);
  }
  return ok;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const jsonOnly = Deno.args.includes("--json");
  const say = (s: string) => jsonOnly || console.error(s);
  const info = await initRuntime({ log: () => {} });
  if (Deno.args.includes("--big")) {
    say(`backend: ${info.backend} (${info.detail})`);
    const { runBigBench } = await import("./big_bench.ts");
    await runBigBench(Deno.args, say, jsonOnly);
    Deno.exit(0);
  }
  const paths = await choosePaths(say);

  if (Deno.args.includes("--profile")) {
    const out: Record<string, unknown> = {};
    for (const p of paths) {
      await useBackend(p);
      say(`[${p}] profiling one training step ...`);
      const prof = await profileStep(
        quick
          ? { rows: 2, samplesPerRow: 2, sampleLen: 128 }
          : DEFAULT_WORKLOAD,
      );
      out[p] = prof;
      if (!jsonOnly) console.log(profileLines(p, prof, 15).join("\n"));
    }
    if (jsonOnly) console.log(JSON.stringify(out, null, 2));
    Deno.exit(0);
  }

  const results: PathBench[] = [];
  for (const p of paths) {
    await useBackend(p);
    results.push(await benchPath(info, quick, say));
  }
  await useBackend(info.backend as BackendName);

  let checkers = null;
  if (!Deno.args.includes("--no-checkers")) {
    say("normalize-check over a generated tree ...");
    const files = quick ? 200 : 2000;
    const nc = await benchNormalizeCheck(files);
    const ncCli = await benchNormalizeCheckCli(files);
    say("validate-spec vs the official OpenSpec CLI ...");
    const half = quick ? 20 : 125;
    const vs = await benchValidateSpec(half, half, quick ? 1 : 5);
    checkers = {
      normalize_check: nc,
      normalize_check_cli: ncCli,
      validate_spec: vs,
    };
  }

  const result = { backend: info, paths: results, checkers };
  if (jsonOnly) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const g = results[0].generation;
    console.log(
      [
        `backend: ${info.backend} (${info.detail})`,
        ...table(results),
        `KV-cache speedup (${results[0].backend})   ${
          g.speedup.toFixed(1)
        }x over recomputing (${g.newTokens} new tokens)`,
        ...(checkers ? checkerLines(checkers) : []),
      ].join("\n"),
    );
    console.log(JSON.stringify(result));
  }
}
