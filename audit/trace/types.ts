/** Shared shapes of the trace audit. */
import type {
  EndRecord,
  ForwardRecord,
  GenerateRecord,
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

/** What the run folder says about the run, next to its trace. */
export interface RunFacts {
  /** The run folder. */
  dir: string;
  /** Whether `config.yaml` is there. */
  configPresent: boolean;
  /** Completed steps in `run_complete.json`, or null when the run never finished. */
  completedSteps: number | null;
  /** The trace's final line was cut mid-write (its 1-based number), or null. */
  tornLine: number | null;
}

/** What the audit knows besides the lines. */
export interface AuditContext {
  /** The config the run promised (trace header, else the run's config.yaml). */
  expect: RunExpect | null;
  /** Where `expect` came from, for messages ("trace header", a file path). */
  expectSource: string | null;
  /** The run folder's facts; null when only the lines are audited. */
  run: RunFacts | null;
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
export type GenerateLine = ParsedLine<GenerateRecord>;
export type EndLine = ParsedLine<EndRecord>;

export function forwards(lines: ParsedLine[]): ForwardLine[] {
  return lines.filter((l): l is ForwardLine => l.rec.kind === "forward");
}

export function steps(lines: ParsedLine[]): StepLine[] {
  return lines.filter((l): l is StepLine => l.rec.kind === "step");
}

export function generations(lines: ParsedLine[]): GenerateLine[] {
  return lines.filter((l): l is GenerateLine => l.rec.kind === "generate");
}

export function ends(lines: ParsedLine[]): EndLine[] {
  return lines.filter((l): l is EndLine => l.rec.kind === "end");
}
