/** Shared shapes of the trace audit. */
import type {
  ForwardRecord,
  RunExpect,
  StepRecord,
} from "../../trainer/trace/schema.ts";
import type { ParsedLine } from "./parse.ts";

/** One broken invariant at one trace line. */
export interface Violation {
  /** 1-based line in trace.jsonl. */
  line: number;
  /** The invariant's name (see `INVARIANTS`). */
  invariant: string;
  /** What is wrong and what to fix. */
  message: string;
}

/** What one checker found. */
export interface CheckResult {
  /** Records (or steps) the invariant applied to. */
  checked: number;
  violations: Violation[];
}

/** What the audit knows besides the lines. */
export interface AuditContext {
  /** The config the run promised (trace header, else the run's config.yaml). */
  expect: RunExpect | null;
  /** Where `expect` came from, for messages ("trace header", a file path). */
  expectSource: string | null;
}

/** A pure check of one invariant over all parsed lines. */
export interface Checker {
  name: string;
  /** One line: what holds when the check passes. */
  description: string;
  check(lines: ParsedLine[], ctx: AuditContext): CheckResult;
}

export type ForwardLine = ParsedLine<ForwardRecord>;
export type StepLine = ParsedLine<StepRecord>;

export function forwards(lines: ParsedLine[]): ForwardLine[] {
  return lines.filter((l): l is ForwardLine => l.rec.kind === "forward");
}

export function steps(lines: ParsedLine[]): StepLine[] {
  return lines.filter((l): l is StepLine => l.rec.kind === "step");
}
