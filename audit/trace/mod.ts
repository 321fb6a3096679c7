/**
 * `stage2 audit` core: re-checks every invariant of a run's trace.
 * Pure over parsed lines (`auditTrace`); `auditRun` adds the file reading.
 */
import { TRACE_FILE } from "../../trainer/trace/schema.ts";
import { FORWARD_CHECKERS } from "./forward_checks.ts";
import { type ParsedLine, parseTrace, TraceFormatError } from "./parse.ts";
import { STEP_CHECKERS } from "./step_checks.ts";
import type { Checker, Violation } from "./types.ts";

export { type ParsedLine, parseTrace, TraceFormatError };
export type { Checker, CheckResult, Violation } from "./types.ts";
export { FORWARD_CHECKERS } from "./forward_checks.ts";
export { STEP_CHECKERS } from "./step_checks.ts";

/** Every invariant the audit checks, in report order. */
export const CHECKERS: Checker[] = [...FORWARD_CHECKERS, ...STEP_CHECKERS];

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
  invariants: InvariantResult[];
  /** All violations, ordered by line. */
  violations: Violation[];
  ok: boolean;
}

/** Runs every checker over parsed lines. */
export function auditTrace(
  lines: ParsedLine[],
  trace = TRACE_FILE,
): AuditReport {
  const invariants: InvariantResult[] = [];
  const violations: Violation[] = [];
  for (const c of CHECKERS) {
    const r = c.check(lines);
    invariants.push({
      name: c.name,
      description: c.description,
      checked: r.checked,
      violations: r.violations.length,
    });
    violations.push(...r.violations);
  }
  violations.sort((a, b) => a.line - b.line);
  const header = lines[0]?.rec;
  const count = (k: string) => lines.filter((l) => l.rec.kind === k).length;
  return {
    trace,
    records: {
      forwards: count("forward"),
      steps: count("step"),
      resumes: count("resume"),
    },
    level: header?.kind === "run" ? header.level : "unknown",
    variant: header?.kind === "run" ? header.variant : "unknown",
    invariants,
    violations,
    ok: violations.length === 0,
  };
}

/** The run folder (or trace file) could not be read. */
export class RunNotFoundError extends Error {}

/**
 * Reads and audits `<runDir>/trace.jsonl` (a path to the trace file itself
 * is accepted too). Throws `RunNotFoundError` for a missing or unreadable
 * run/trace and `TraceFormatError` for a malformed line.
 */
export async function auditRun(runDir: string): Promise<AuditReport> {
  let path = runDir;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new RunNotFoundError(
      `cannot read run ${runDir}: ${
        e instanceof Deno.errors.NotFound
          ? "no such folder"
          : (e as Error).message
      }`,
    );
  }
  if (info.isDirectory) path = `${runDir.replace(/\/$/, "")}/${TRACE_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new RunNotFoundError(
      e instanceof Deno.errors.NotFound
        ? `${path} does not exist: the run wrote no trace (set training.trace: summary or full and train again)`
        : `cannot read ${path}: ${(e as Error).message}`,
    );
  }
  return auditTrace(parseTrace(text, path), path);
}
