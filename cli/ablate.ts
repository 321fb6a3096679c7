/**
 * `stage2 ablate [--budget small|full] [--out DIR]` (also `deno task
 * ablate`): continued SFT vs A-only (1 and 2 passes) vs B-only vs mixed
 * A/A/B from one Stage-1 checkpoint at one step budget, 2 seeds each, one
 * markdown table in the ablation folder. Re-running continues an
 * interrupted ablation.
 */
import type { Command } from "commander";
import { UsageError, userPath } from "./common.ts";

interface AblateFlags {
  budget: string;
  out?: string;
  config?: string;
  arms?: string;
  stage1?: string;
  set: string[];
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

async function runAblate(flags: AblateFlags): Promise<void> {
  if (flags.budget !== "small" && flags.budget !== "full") {
    throw new UsageError(
      `--budget must be "small" or "full", got ${JSON.stringify(flags.budget)}`,
    );
  }
  const { runAblation, ARMS } = await import("../trainer/ablate/run.ts");
  const { ConfigError } = await import("../trainer/config/mod.ts");
  const arms = flags.arms?.split(",").map((a) => a.trim()).filter(Boolean);
  const bad = (arms ?? []).filter((a) => !ARMS.some((x) => x.name === a));
  if (bad.length) {
    throw new UsageError(
      `--arms: unknown arm(s) ${bad.join(", ")}; arms are ${
        ARMS.map((a) => a.name).join(", ")
      }`,
    );
  }
  let result;
  try {
    result = await runAblation({
      budget: flags.budget,
      outDir: userPath(flags.out ?? `runs/ablate-${flags.budget}`),
      baseConfig: flags.config ? userPath(flags.config) : undefined,
      stage1Checkpoint: flags.stage1 ? userPath(flags.stage1) : undefined,
      arms,
      overrides: flags.set,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  console.log(result.markdown);
  console.log(`table: ${result.tablePath}`);
}

export function register(program: Command): void {
  program.command("ablate")
    .description(
      "Stage-2 ablation: continued SFT vs A-only vs B-only vs A/A/B from one Stage-1 checkpoint, 2 seeds, one table",
    )
    .option(
      "--budget <name>",
      "small (300 steps per run, ~25 min) or full (1200)",
      "small",
    )
    .option("--out <dir>", "ablation folder (default: runs/ablate-<budget>)")
    .option(
      "--config <file>",
      "base Stage-2 config (default: configs/ablate/stage2_base.yaml)",
    )
    .option("--arms <list>", "comma-separated subset: sft,a1,a2,b,ab")
    .option(
      "--stage1 <checkpoint>",
      "start every arm from this finished Stage-1 checkpoint (default: train the base config's warm start)",
    )
    .option(
      "--set <key=value>",
      "override one config value in every arm (repeatable)",
      collect,
      [],
    )
    .action(runAblate);
}
