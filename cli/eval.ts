/**
 * `stage2 eval --checkpoint DIR --data FILE.jsonl [--out DIR]
 * [--max-samples N] [--max-new-tokens N] [--batch-size N] [--overlays N]
 * [--json]`: detection metrics of a checkpoint on a split (see
 * `trainer/eval`). Exit 0 when the evaluation ran, 2 for a missing or
 * unusable checkpoint or data file (one line naming the file or record).
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./common.ts";

interface EvalFlags {
  checkpoint: string;
  data: string;
  out?: string;
  maxSamples?: number;
  maxNewTokens: number;
  batchSize: number;
  overlays: number;
  json?: boolean;
  progress?: boolean;
}

function intAtLeast(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new UsageError(
        `${flag} must be an integer >= ${min}, got ${JSON.stringify(v)}`,
      );
    }
    return n;
  };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function runEval(f: EvalFlags): Promise<void> {
  const checkpoint = userPath(f.checkpoint).replace(/\/$/, "");
  for (const file of ["config.json", "model.safetensors", "tokenizer.json"]) {
    if (!(await isFile(`${checkpoint}/${file}`))) {
      throw new UsageError(
        `--checkpoint ${f.checkpoint}: no ${file} there; pass a checkpoint-<step> folder of a run`,
      );
    }
  }
  const data = userPath(f.data);
  if (!(await isFile(data))) {
    throw new UsageError(`--data ${f.data}: no such file`);
  }
  const { initRuntime } = await import("../trainer/runtime.ts");
  await initRuntime({ log: () => {} });
  const { CHECKPOINT_EVAL_DIR, formatPerDesc, formatSummary } = await import(
    "../trainer/eval/summary.ts"
  );
  const out = f.out === undefined
    ? `${checkpoint}/${CHECKPOINT_EVAL_DIR}`
    : userPath(f.out);
  const { evaluateCheckpoint } = await import(
    "../trainer/loop/eval_checkpoint.ts"
  );
  // A bad checkpoint or data file is an InputError (exit 2, one line) from
  // where it is found; cli/common.ts prints it.
  const r = await evaluateCheckpoint({
    checkpoint,
    data,
    out,
    maxSamples: f.maxSamples ?? null,
    maxNewTokens: f.maxNewTokens,
    batchSize: f.batchSize,
    overlays: f.overlays,
    progressTty: f.progress === false ? false : undefined,
    log: (s) => console.error(s),
  });
  if (f.json) {
    console.log(JSON.stringify(r.summary, null, 2));
    return;
  }
  console.log(formatSummary(r.summary));
  console.log(formatPerDesc(r.summary));
  console.log(`AP: ${r.summary.ap_convention}`);
  console.log(`box score: ${r.summary.box_score}`);
  console.log(`summary: ${r.summaryPath}`);
}

export function register(program: Command): void {
  program.command("eval")
    .description(
      "Greedy rollouts of a checkpoint on a JSONL split: parse rate, P/R/F1@0.5, COCO AP/AP50, mean IoU, per-desc table, overlays",
    )
    .requiredOption(
      "--checkpoint <dir>",
      "checkpoint folder (checkpoint-<step>)",
    )
    .requiredOption("--data <file.jsonl>", "detection records to evaluate on")
    .option("--out <dir>", "output folder (default: <checkpoint>/eval)")
    .option(
      "--max-samples <n>",
      "evaluate the first n records only",
      intAtLeast("--max-samples", 1),
    )
    .option(
      "--max-new-tokens <n>",
      "generation limit per image",
      intAtLeast("--max-new-tokens", 1),
      256,
    )
    .option(
      "--batch-size <n>",
      "images per batched generation",
      intAtLeast("--batch-size", 1),
      16,
    )
    .option(
      "--overlays <n>",
      "PNG overlays to write (first n images)",
      intAtLeast("--overlays", 0),
      8,
    )
    .option("--json", "print eval_summary.json instead of the text summary")
    .option("--no-progress", "plain log lines instead of a progress bar")
    .action(runEval);
}
