/**
 * `stage2 train [--config FILE] [--set k=v]... [--resume [DIR] | --overwrite]`.
 *
 * Without `--config` it runs the embedded quickstart (`configs/quickstart.yaml`):
 * synthetic data, a tiny tokenizer, a Stage-1 warm start, Stage-2 AB with
 * both channels, then a validation rollout summary and the run's report.html.
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./common.ts";
import { writeReport } from "./report.ts";

/** The config `stage2 train` runs when none is given. */
export const QUICKSTART_CONFIG = new URL(
  "../configs/quickstart.yaml",
  import.meta.url,
);

interface TrainFlags {
  config?: string;
  set: string[];
  resume?: string | boolean;
  overwrite?: boolean;
  progress?: boolean;
}

function collect(v: string, prev: string[]): string[] {
  if (!/^[A-Za-z_][\w.]*=/.test(v)) {
    throw new UsageError(
      `--set expects key=value with a dotted config key (e.g. training.max_steps=20), got ${
        JSON.stringify(v)
      }`,
    );
  }
  return [...prev, v];
}

async function runTrain(flags: TrainFlags): Promise<void> {
  if (flags.resume !== undefined && flags.overwrite) {
    throw new UsageError(
      "pass either --resume (continue the run in output_dir) or --overwrite (start over there), not both",
    );
  }
  const { loadConfigDetailed } = await import("../trainer/config/mod.ts");
  const configPath = flags.config
    ? userPath(flags.config)
    : decodeURIComponent(QUICKSTART_CONFIG.pathname);
  const loaded = await loadConfigDetailed(configPath, flags.set);
  for (const w of loaded.warnings) console.error(`warning: ${w}`);
  // --overwrite starts over even where the config says `training.resume`
  // (the quickstart resumes by default).
  const resume = flags.overwrite
    ? null
    : flags.resume === undefined
    ? undefined
    : flags.resume === true
    ? "auto"
    : userPath(flags.resume as string);
  if (typeof resume === "string" && resume !== "auto") {
    // Fail before the runtime starts and before output_dir is created.
    const { verifyResumeDir } = await import("../trainer/loop/run_dir.ts");
    await verifyResumeDir(resume);
  }
  if (!flags.config) {
    console.error(
      `stage2 train: no --config given, running the quickstart (${configPath})`,
    );
  }
  const { train } = await import("../trainer/loop/train.ts");
  const { formatSummary } = await import("../trainer/eval/summary.ts");
  const result = await train({
    config: loaded.config,
    resume,
    overwrite: flags.overwrite ?? false,
    progressTty: flags.progress === false ? false : undefined,
  });
  const ws = result.warmStart;
  if (ws) {
    if (ws.evalLossStart !== null && ws.evalLossEnd !== null) {
      console.log(
        `stage 1 (warm start, ${ws.runDir}): eval loss ${
          ws.evalLossStart.toFixed(4)
        } -> ${ws.evalLossEnd.toFixed(4)}`,
      );
    }
    if (ws.summary) {
      console.log(formatSummary(ws.summary, "stage 1 (warm start)"));
    }
  }
  if (result.summary) {
    console.log(
      formatSummary(result.summary, loaded.config.custom.trainer_variant),
    );
  }
  if (result.evalLossStart !== null && result.evalLossEnd !== null) {
    console.log(
      `${loaded.config.custom.trainer_variant}: eval loss ${
        result.evalLossStart.toFixed(4)
      } -> ${result.evalLossEnd.toFixed(4)}`,
    );
  }
  console.log(`run folder: ${result.runDir}`);
  console.log(`report: ${await writeReport(result.runDir)}`);
}

export function register(program: Command): void {
  program.command("train")
    .description(
      "Train from a YAML config (default: the embedded quickstart: Stage-1 warm start, then Stage-2 AB)",
    )
    .option("--config <file>", "YAML config (default: configs/quickstart.yaml)")
    .option(
      "--set <key=value>",
      "override one config value (repeatable), e.g. --set training.max_steps=20",
      collect,
      [],
    )
    .option(
      "--resume [dir]",
      "continue the run in output_dir from its newest complete checkpoint, or from the checkpoint folder given",
    )
    .option(
      "--overwrite",
      "start over in a non-empty output_dir: removes only what stage2 wrote there (never other files)",
    )
    .option("--no-progress", "plain log lines instead of a progress bar")
    .addHelpText(
      "after",
      `
Run folder (training.output_dir): a fresh run refuses a non-empty folder
(pass --resume or --overwrite); one training process per folder (train.lock).
Warm start: with model.warm_start_config, the Stage-1 run is trained once
into model.warm_start_dir (default <parent of output_dir>/warm_start/),
one <variant>-<config hash>/ folder per config, and reused after that.
Exit codes: 0 success, 1 failed run (e.g. non-finite loss), 2 bad input or usage.`,
    )
    .action(runTrain);
}
