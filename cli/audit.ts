/**
 * `stage2 audit --run DIR [--json]`: re-checks a run's trace. Exit 0 when
 * every invariant holds, 1 on any violation, 2 when the run or its trace is
 * missing, unreadable or malformed. Imports no TF.js.
 */
import type { Command } from "commander";
import { EXIT_FINDINGS, UsageError, userPath } from "./common.ts";
import {
  auditRun,
  RunReadError,
  TraceFormatError,
} from "../audit/trace/mod.ts";
import { formatHuman, formatJson } from "../audit/trace/report.ts";

export function register(program: Command): void {
  program
    .command("audit")
    .description(
      "check a run's trace.jsonl: packing/position ids, attention segments, cache, inputs, placeholders, logits, causal shift, schedule and seeds",
    )
    .requiredOption("--run <dir>", "run folder holding trace.jsonl")
    .option("--json", "print the report as JSON")
    .action(async (opts: { run: string; json?: boolean }) => {
      let report;
      try {
        report = await auditRun(userPath(opts.run));
      } catch (e) {
        if (e instanceof RunReadError || e instanceof TraceFormatError) {
          throw new UsageError(e.message);
        }
        throw e;
      }
      console.log(opts.json ? formatJson(report) : formatHuman(report));
      if (!report.ok) Deno.exitCode = EXIT_FINDINGS;
    });
}
