/**
 * `stage2 audit --run DIR [--json]`: re-checks a run's trace. Exit 0 when
 * every invariant holds, 1 on any violation, 2 when the run or its trace is
 * missing, unreadable or malformed. Imports no TF.js.
 *
 * Deliberately no import from ./main.ts: main.ts awaits at top level while
 * it loads this module, so a static import back into it deadlocks module
 * evaluation when main.ts is the entry point. Errors are therefore printed
 * here in main's one-line format.
 */
import type { Command } from "commander";
import {
  auditRun,
  RunNotFoundError,
  TraceFormatError,
} from "../audit/trace/mod.ts";
import { formatHuman, formatJson } from "../audit/trace/report.ts";

const EXIT_FINDINGS = 1;
const EXIT_USAGE = 2;

/** A user path resolved against where `deno task` was started (INIT_CWD). */
function fromUserCwd(p: string): string {
  if (p.startsWith("/")) return p;
  const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  return `${base.replace(/\/$/, "")}/${p}`;
}

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
        report = await auditRun(fromUserCwd(opts.run));
      } catch (e) {
        if (e instanceof RunNotFoundError || e instanceof TraceFormatError) {
          console.error(`stage2: ${e.message}`);
          Deno.exitCode = EXIT_USAGE;
          return;
        }
        throw e;
      }
      console.log(opts.json ? formatJson(report) : formatHuman(report));
      if (!report.ok) Deno.exitCode = EXIT_FINDINGS;
    });
}
