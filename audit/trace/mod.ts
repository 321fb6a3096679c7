/**
 * `stage2 audit` core: re-checks every invariant of a run's trace.
 * Pure over parsed lines (`auditTrace`); `auditRun` adds the file reading.
 */
import { TRACE_FILE } from "../../trainer/trace/schema.ts";
import {
  COMPLETENESS_CHECKERS,
  COMPLETENESS_INVARIANTS,
} from "./complete_checks.ts";
import { FORWARD_CHECKERS } from "./forward_checks.ts";
import { OBSERVED_CHECKERS } from "./observed_checks.ts";
import {
  type ParsedLine,
  parseTrace,
  readTrace,
  TraceFormatError,
} from "./parse.ts";
import { ROLLOUT_CHECKERS } from "./rollout_checks.ts";
import { STEP_CHECKERS } from "./step_checks.ts";
import type { AuditContext, Checker, RunFacts, Violation } from "./types.ts";
import type { RunExpect } from "../../trainer/trace/schema.ts";
import { ConfigExpectError, readConfigExpect } from "./config_expect.ts";

export { type ParsedLine, parseTrace, readTrace, TraceFormatError };
export type {
  AuditContext,
  Checker,
  CheckResult,
  RunFacts,
  Violation,
} from "./types.ts";
export { ConfigExpectError, expectFromConfig } from "./config_expect.ts";
export { FORWARD_CHECKERS } from "./forward_checks.ts";
export { OBSERVED_CHECKERS } from "./observed_checks.ts";
export { ROLLOUT_CHECKERS } from "./rollout_checks.ts";
export { STEP_CHECKERS } from "./step_checks.ts";
export { COMPLETENESS_CHECKERS, COMPLETENESS_INVARIANTS };

/** Every invariant the audit checks, in report order. */
export const CHECKERS: Checker[] = [
  ...FORWARD_CHECKERS,
  ...OBSERVED_CHECKERS,
  ...STEP_CHECKERS,
  ...ROLLOUT_CHECKERS,
  ...COMPLETENESS_CHECKERS,
];

/**
 * PASS: every invariant holds. INCOMPLETE: only completeness invariants
 * fail (the run did not finish, the trace is cut short, steps or the
 * config are missing). FAIL: anything else.
 */
export type Verdict = "PASS" | "FAIL" | "INCOMPLETE";

export interface InvariantResult {
  name: string;
  description: string;
  checked: number;
  violations: number;
}

export interface AuditReport {
  /** Path of the trace that was read. */
  trace: string;
  records: { forwards: number; steps: number; resumes: number };
  /** The header's level ("summary" or "full") and variant. */
  level: string;
  variant: string;
  /** Where the config expectations came from, or null when there were none. */
  expectSource: string | null;
  invariants: InvariantResult[];
  /** All violations, ordered by line. */
  violations: Violation[];
  /** True only for PASS. */
  ok: boolean;
  verdict: Verdict;
}

/**
 * Runs every checker over parsed lines. Config expectations come from the
 * trace header when it has them, else from `opts.expect` (the run's
 * config.yaml).
 */
export function auditTrace(
  lines: ParsedLine[],
  opts: {
    trace?: string;
    expect?: RunExpect | null;
    expectSource?: string;
    run?: RunFacts | null;
  } = {},
): AuditReport {
  const header = lines[0]?.rec;
  const fromHeader = header?.kind === "run" ? header.expect : undefined;
  const run = opts.run ?? null;
  const ctx: AuditContext = fromHeader
    ? { expect: fromHeader, expectSource: "the trace header", run }
    : opts.expect
    ? {
      expect: opts.expect,
      expectSource: opts.expectSource ?? "config.yaml",
      run,
    }
    : { expect: null, expectSource: null, run };
  const invariants: InvariantResult[] = [];
  const violations: Violation[] = [];
  for (const c of CHECKERS) {
    const r = c.check(lines, ctx);
    invariants.push({
      name: c.name,
      description: c.description,
      checked: r.checked,
      violations: r.violations.length,
    });
    violations.push(...r.violations);
  }
  violations.sort((a, b) => a.line - b.line);
  const count = (k: string) => lines.filter((l) => l.rec.kind === k).length;
  return {
    trace: opts.trace ?? TRACE_FILE,
    records: {
      forwards: count("forward"),
      steps: count("step"),
      resumes: count("resume"),
    },
    level: header?.kind === "run" ? header.level : "unknown",
    variant: header?.kind === "run" ? header.variant : "unknown",
    expectSource: ctx.expectSource,
    invariants,
    violations,
    ok: violations.length === 0,
    verdict: violations.length === 0
      ? "PASS"
      : violations.every((v) => COMPLETENESS_INVARIANTS.includes(v.invariant))
      ? "INCOMPLETE"
      : "FAIL",
  };
}

/** The run folder, its trace or its config.yaml could not be read or used. */
export class RunReadError extends Error {}

/**
 * Reads and audits `<runDir>/trace.jsonl` (a path to the trace file itself
 * is accepted too). When the trace header carries no config expectations,
 * the run's `config.yaml` supplies them; a missing config.yaml, a missing
 * `run_complete.json` and a trace cut short are findings (verdict
 * INCOMPLETE). Throws `RunReadError` for a missing or unreadable
 * run/trace/config and `TraceFormatError` for a corrupt line.
 * `report.ok` is true only for the verdict PASS.
 *
 * @example
 * const report = await auditRun("runs/quickstart");
 * for (const inv of report.invariants) console.log(inv.name, inv.violations);
 */
export async function auditRun(runDir: string): Promise<AuditReport> {
  let path = runDir;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new RunReadError(
      `cannot read run ${runDir}: ${
        e instanceof Deno.errors.NotFound
          ? "no such folder"
          : (e as Error).message
      }`,
    );
  }
  const dir = info.isDirectory
    ? runDir.replace(/\/$/, "")
    : path.slice(0, Math.max(0, path.lastIndexOf("/"))) || ".";
  if (info.isDirectory) path = `${dir}/${TRACE_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new RunReadError(
      e instanceof Deno.errors.NotFound
        ? `${path} does not exist: the run wrote no trace (set training.trace: summary or full and train again)`
        : `cannot read ${path}: ${(e as Error).message}`,
    );
  }
  const { lines, tornLine } = readTrace(text, path);
  const header = lines[0].rec;
  const run: RunFacts = {
    dir,
    configPresent: await exists(`${dir}/config.yaml`),
    completedSteps: await completedSteps(`${dir}/${RUN_COMPLETE_FILE}`),
    tornLine,
  };
  let expect: RunExpect | null = null;
  if (header.kind === "run" && !header.expect) {
    try {
      expect = await readConfigExpect(dir);
    } catch (e) {
      if (e instanceof ConfigExpectError) {
        throw new RunReadError(
          `${e.message} (the audit reads the run's config.yaml to check the trace against it)`,
        );
      }
      throw e;
    }
  }
  return auditTrace(lines, {
    trace: path,
    expect,
    expectSource: `${dir}/config.yaml`,
    run,
  });
}

/** `run_complete.json`, written by the trainer when a run finished (see trainer/loop/finish.ts). */
const RUN_COMPLETE_FILE = "run_complete.json";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw new RunReadError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** The completed steps a run's completion marker records, or null without one. */
async function completedSteps(path: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new RunReadError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let steps: unknown;
  try {
    steps = JSON.parse(text).global_step;
  } catch {
    steps = undefined;
  }
  if (!Number.isInteger(steps)) {
    throw new RunReadError(
      `${path}: not a completion marker (expected {"global_step": <int>, ...})`,
    );
  }
  return steps as number;
}
