/**
 * `stage2 audit --run DIR [--json] [--probe]` re-checks a run's trace (and
 * with `--probe` replays a recorded batch on its latest checkpoint);
 * `stage2 audit --selftest` runs the fault-injection matrix. Exit 0 when
 * everything holds, 1 on any violation, incomplete run or missed fault, 2
 * when the run or its trace is missing, unreadable or corrupt. Imports no
 * TF.js: the probes and the self-test load the trainer lazily.
 */
import type { Command } from "commander";
import { EXIT_FINDINGS, InputError, UsageError, userPath } from "./common.ts";
import {
  auditRun,
  RunReadError,
  TraceFormatError,
} from "../audit/trace/mod.ts";
import { formatHuman, formatJson } from "../audit/trace/report.ts";
import { formatProbes, judgeProbes } from "../audit/probe.ts";
import {
  formatSelftest,
  formatSelftestRow,
  runSelftest,
} from "../audit/selftest.ts";

interface AuditOptions {
  run?: string;
  json?: boolean;
  probe?: boolean;
  selftest?: boolean;
  keep?: string;
}

async function auditCommand(opts: AuditOptions): Promise<void> {
  if (opts.selftest) {
    if (opts.run || opts.probe) {
      throw new UsageError("--selftest takes no --run or --probe");
    }
    return await selftest(opts);
  }
  if (!opts.run) {
    throw new UsageError("give --run DIR (or --selftest)");
  }
  const dir = userPath(opts.run);
  let report;
  try {
    report = await auditRun(dir);
  } catch (e) {
    if (e instanceof RunReadError || e instanceof TraceFormatError) {
      throw new UsageError(e.message);
    }
    throw e;
  }
  let probes = null;
  if (opts.probe) {
    const { probeRun } = await import("../trainer/selfcheck/mod.ts");
    try {
      probes = judgeProbes(await probeRun(dir));
    } catch (e) {
      // A missing or unusable replay batch or checkpoint is bad input;
      // anything else is a bug and keeps its own message and code.
      if (!(e instanceof InputError)) throw e;
      throw new InputError(`--probe: ${e.message}`, { cause: e });
    }
  }
  if (opts.json) {
    console.log(
      probes
        ? JSON.stringify({ audit: report, probes }, null, 2)
        : formatJson(report),
    );
  } else {
    console.log(formatHuman(report));
    if (probes) console.log("\n" + formatProbes(probes));
  }
  if (!report.ok || (probes && !probes.ok)) Deno.exitCode = EXIT_FINDINGS;
}

async function selftest(opts: AuditOptions): Promise<void> {
  const { selftestRunner } = await import("../trainer/selfcheck/mod.ts");
  const workDir = opts.keep
    ? await emptyKeepDir(userPath(opts.keep))
    : await Deno.makeTempDir({ prefix: "stage2-selftest-" });
  try {
    const rep = await runSelftest(
      selftestRunner(),
      workDir,
      opts.json ? undefined : (row) => console.log(formatSelftestRow(row)),
    );
    if (opts.json) console.log(JSON.stringify(rep, null, 2));
    else console.log(formatSelftest(rep).split("\n").at(-1));
    if (!rep.ok) Deno.exitCode = EXIT_FINDINGS;
  } finally {
    if (!opts.keep) await Deno.remove(workDir, { recursive: true });
  }
}

/**
 * The `--keep` folder, which must be empty or missing: every run of the
 * matrix trains into a fresh folder there, and training refuses a used one
 * (a stale folder would be audited in place of a run that never happened).
 */
async function emptyKeepDir(dir: string): Promise<string> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new UsageError(
        `--keep ${dir} is not empty: the self-test trains fresh runs there; give an empty or new folder`,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return dir;
}

export function register(program: Command): void {
  program
    .command("audit")
    .description(
      "check a run's trace.jsonl: packing/position ids, attention masks, cache, inputs, placeholders, logits, the rows Channel A fed, schedule, seeds, rollouts and completeness",
    )
    .option("--run <dir>", "run folder holding trace.jsonl")
    .option("--json", "print the report as JSON")
    .option(
      "--probe",
      "also replay the run's recorded batch on its latest checkpoint: segment isolation, KV cache, embeddings path, soft rows",
    )
    .option(
      "--selftest",
      "inject each known trainer fault into a tiny run and check that the invariant naming it fails",
    )
    .option("--keep <dir>", "with --selftest: keep the runs in this folder")
    .action(auditCommand);
}
