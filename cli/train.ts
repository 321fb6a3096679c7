/**
 * `stage2 train [--config FILE] [--set k=v]... [--resume [DIR]]`.
 *
 * Without `--config` it runs the embedded quickstart (`configs/quickstart.yaml`):
 * synthetic data, a tiny tokenizer, a Stage-1 warm start, Stage-2 AB with
 * both channels, then a validation rollout summary and the run's report.html.
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./main.ts";
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

/** Errors whose message is the whole story (bad config, data, paths). */
function isUserFacing(e: unknown): e is Error {
  if (!(e instanceof Error)) return false;
  return [
    "Error",
    "RangeError",
    "ConfigError",
    "DataError",
    "TokenizerError",
    "NotFound",
    "PermissionDenied",
  ].includes(e.name);
}

async function runTrain(flags: TrainFlags): Promise<void> {
  const { loadConfigDetailed, ConfigError } = await import(
    "../trainer/config/mod.ts"
  );
  const configPath = flags.config
    ? userPath(flags.config)
    : decodeURIComponent(QUICKSTART_CONFIG.pathname);
  let loaded;
  try {
    loaded = await loadConfigDetailed(configPath, flags.set);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  for (const w of loaded.warnings) console.error(`warning: ${w}`);
  const resume = flags.resume === undefined
    ? undefined
    : flags.resume === true
    ? "auto"
    : userPath(flags.resume as string);
  if (typeof flags.resume === "string" && resume !== undefined) {
    try {
      await Deno.stat(`${resume}/trainer_state.json`);
    } catch {
      throw new UsageError(
        `--resume ${flags.resume}: no trainer_state.json there; pass a checkpoint-<step> folder, or --resume alone for the run folder's latest`,
      );
    }
  }
  if (!flags.config) {
    console.error(
      `stage2 train: no --config given, running the quickstart (${configPath})`,
    );
  }
  const { train } = await import("../trainer/loop/train.ts");
  const { formatSummary } = await import("../trainer/eval/summary.ts");
  let result;
  try {
    result = await train({
      config: loaded.config,
      resume,
      progressTty: flags.progress === false ? false : undefined,
    });
  } catch (e) {
    // A bad warm-start config is a usage error like a bad --config.
    if (e instanceof ConfigError) throw new UsageError(e.message);
    // Set STAGE2_DEBUG=1 to see the stack trace instead of one line.
    if (isUserFacing(e) && !Deno.env.get("STAGE2_DEBUG")) {
      throw new UsageError(e.message, 1);
    }
    throw e;
  }
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
      "continue from a checkpoint folder (default: the run folder's latest)",
    )
    .option("--no-progress", "plain log lines instead of a progress bar")
    .action(runTrain);
}
