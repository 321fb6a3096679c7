/**
 * `deno task bench`: speed and memory figures of this machine, measured side
 * by side in one process so the ratios compare like with like.
 *
 * - matmul peak GFLOP/s (square fp32 matmul), and the achieved GFLOP/s of a
 *   packed forward+backward of the tiny model next to it (`model_bench.ts`);
 * - generation tokens/s with and without the KV cache, and their ratio;
 * - the real training loop on a quickstart-sized Stage-1 config: training
 *   tokens/s, seconds per optimizer step, and peak resident memory (run
 *   first, so the peak is the loop's own).
 *
 * - the checkers: `normalize-check` over a generated 2,000-file tree, and
 *   `validate-spec` next to the official OpenSpec CLI on a generated
 *   250-item repository (single call and `--all`).
 *
 * Flags: `--quick` shrinks every workload (for a smoke run); `--json` prints
 * only the JSON object; `--no-checkers` skips the checker section (it needs
 * the npm registry to install the official OpenSpec CLI once).
 */
import { join } from "node:path";
import { initRuntime } from "../trainer/runtime.ts";
import { loadConfig } from "../trainer/config/mod.ts";
import { train } from "../trainer/loop/train.ts";
import {
  benchForwardBackward,
  benchGeneration,
  benchMatmulPeak,
  DEFAULT_WORKLOAD,
} from "./model_bench.ts";
import {
  benchNormalizeCheck,
  benchNormalizeCheckCli,
} from "./normalize_check_bench.ts";
import { benchValidateSpec } from "./validate_spec_bench.ts";

/** Peak resident set size of this process in bytes (Linux VmHWM), or null. */
export function peakRssBytes(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export interface LoopBench {
  steps: number;
  tokensPerSecond: number;
  secondsPerStep: number;
  samplesPerStep: number;
  peakRssMiB: number | null;
}

/**
 * Trains `steps` optimizer updates of the Stage-1 preset (same model, data,
 * micro-batch and packing as the quickstart's Stage 1) in a temp folder.
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
      `training.logging_steps=${steps}`,
      "training.eval_steps=0",
      "training.save_steps=0",
      "training.warmup_steps=0",
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

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const jsonOnly = Deno.args.includes("--json");
  const info = await initRuntime({ log: () => {} });
  const say = (s: string) => jsonOnly || console.error(s);
  say(`backend ${info.backend} (simd=${info.simd}, threads=${info.threads})`);

  // First, so the peak RSS is that of the training loop, not of the larger
  // synthetic workloads below.
  say("training loop, quickstart-sized steps ...");
  const loop = await benchTrainingLoop(quick ? 3 : 12);
  say("matmul peak ...");
  const peak = await benchMatmulPeak(quick ? 512 : 1024, quick ? 2 : 5);
  say("forward+backward over packed rows ...");
  const fb = await benchForwardBackward(
    undefined,
    quick ? { rows: 2, samplesPerRow: 2, sampleLen: 128 } : DEFAULT_WORKLOAD,
    quick ? 1 : 2,
  );
  say("generation with and without KV cache ...");
  const gen = await benchGeneration(undefined, quick ? 16 : 128);
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

  const result = {
    backend: info,
    matmul_peak_gflops: peak,
    forward_backward: {
      tokens_per_step: fb.tokensPerStep,
      seconds_per_step: fb.secondsPerStep,
      tokens_per_second: fb.tokensPerSecond,
      gflops: fb.gflops,
      fraction_of_matmul_peak: fb.gflops / peak,
    },
    generation: {
      new_tokens: gen.newTokens,
      kv_cache_tokens_per_second: gen.cachedTokensPerSecond,
      recompute_tokens_per_second: gen.recomputeTokensPerSecond,
      kv_cache_speedup: gen.speedup,
    },
    training_loop: {
      steps: loop.steps,
      samples_per_step: loop.samplesPerStep,
      tokens_per_second: loop.tokensPerSecond,
      seconds_per_step: loop.secondsPerStep,
      peak_rss_mib: loop.peakRssMiB,
    },
    checkers,
  };
  if (jsonOnly) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const f = (v: number, d = 1) => v.toFixed(d);
    console.log(
      [
        `matmul peak               ${f(peak)} GFLOP/s`,
        `forward+backward          ${f(fb.gflops)} GFLOP/s = ${
          f(100 * fb.gflops / peak)
        }% of peak (${fb.tokensPerStep} tokens/step, ${
          f(fb.tokensPerSecond, 0)
        } tokens/s)`,
        `generation, KV cache      ${f(gen.cachedTokensPerSecond)} tokens/s`,
        `generation, recompute     ${f(gen.recomputeTokensPerSecond)} tokens/s`,
        `KV-cache speedup          ${
          f(gen.speedup)
        }x (${gen.newTokens} new tokens)`,
        `training loop             ${f(loop.tokensPerSecond, 0)} tokens/s, ${
          f(loop.secondsPerStep, 2)
        } s/step (${loop.samplesPerStep} samples/step)`,
        `peak RSS                  ${
          loop.peakRssMiB === null ? "n/a" : `${f(loop.peakRssMiB, 0)} MiB`
        }`,
        ...(checkers ? checkerLines(checkers) : []),
      ].join("\n"),
    );
    console.log(JSON.stringify(result));
  }
}
