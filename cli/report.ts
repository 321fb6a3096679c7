/**
 * `stage2 report --run DIR [--overlays N]`: writes `<DIR>/report.html`, one
 * self-contained page (curves, channel mix, rollout statistics, evaluation
 * table, overlays, audit verdict) that opens from disk. Exit 2 when DIR is
 * not a run folder. `stage2 train` writes it the same way (`writeReport`).
 */
import type { Command } from "commander";
import { join } from "node:path";
import { UsageError, userPath } from "./common.ts";

/**
 * Audits the run's trace (when it has one) and writes `<runDir>/report.html`
 * with the verdict; returns the page's path. The audit runs here, not in
 * `trainer/report`: `trainer/` never imports `audit/`.
 */
export async function writeReport(
  runDir: string,
  o: { overlays?: number } = {},
): Promise<string> {
  const { TRACE_FILE } = await import("../trainer/trace/schema.ts");
  const traced = await Deno.stat(join(runDir, TRACE_FILE)).then(
    (i) => i.isFile,
    () => false,
  );
  let audit;
  if (traced) {
    const { auditRun } = await import("../audit/trace/mod.ts");
    audit = await auditRun(runDir).then(
      (report) => ({ report }),
      (e) => ({ error: (e as Error).message }),
    );
  }
  const { writeRunReport } = await import("../trainer/report/mod.ts");
  return await writeRunReport(runDir, { overlays: o.overlays, audit });
}

async function runReport(o: { run: string; overlays: number }): Promise<void> {
  const dir = userPath(o.run).replace(/\/$/, "");
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(dir);
  } catch {
    info = null;
  }
  if (!info?.isDirectory) {
    throw new UsageError(`--run ${o.run}: no such folder`);
  }
  const markers = ["config.yaml", "metrics.jsonl", "eval_summary.json"];
  const found = await Promise.all(
    markers.map((f) => Deno.stat(`${dir}/${f}`).then(() => true, () => false)),
  );
  if (!found.some((x) => x)) {
    throw new UsageError(
      `--run ${o.run}: not a run folder (none of ${markers.join(", ")} there)`,
    );
  }
  console.log(await writeReport(dir, { overlays: o.overlays }));
}

export function register(program: Command): void {
  program.command("report")
    .description(
      "Write <run>/report.html: config, curves, channel mix, rollout statistics, eval table, overlays, audit verdict",
    )
    .requiredOption("--run <dir>", "run folder")
    .option(
      "--overlays <n>",
      "overlays to embed (first n evaluated images)",
      (v: string) => {
        const n = Number(v);
        if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n)) {
          throw new UsageError(
            `--overlays must be an integer >= 0, got ${JSON.stringify(v)}`,
          );
        }
        return n;
      },
      8,
    )
    .action(runReport);
}
