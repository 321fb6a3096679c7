/**
 * Completeness: a PASS vouches for a whole run, so the trace must reach the
 * run's end, cover every step of it, come with the config it is checked
 * against, and carry full detail where its header promises it. A run that
 * is not finished (stopped, crashed, still running) or a trace cut short
 * is reported as incomplete, never as passing.
 */
import { isDetailedStep, type RunRecord } from "../../trainer/trace/schema.ts";
import {
  type Checker,
  ends,
  forwards,
  generations,
  steps,
  type Violation,
} from "./types.ts";

/** The invariants whose violations make a report "incomplete" rather than "failed". */
export const COMPLETENESS_INVARIANTS = [
  "run-finished",
  "steps-cover-run",
  "config-present",
];

const runFinished: Checker = {
  name: "run-finished",
  description:
    "the trace ends with the run's end record, written once every step finished (and run_complete.json agrees); no line is cut short",
  check(lines, ctx) {
    const violations: Violation[] = [];
    const v = (line: number, message: string) =>
      violations.push({ line, invariant: "run-finished", message });
    const last = lines[lines.length - 1].line;
    const torn = ctx.run?.tornLine ?? null;
    if (torn !== null) {
      v(
        torn,
        "the final line has no newline: the trace was cut mid-write (the run was killed or is still writing)",
      );
    }
    const stepLines = steps(lines);
    const lastStep = stepLines.length
      ? stepLines[stepLines.length - 1].rec.globalStep
      : null;
    const endLines = ends(lines);
    const end = endLines.at(-1);
    if (!end) {
      v(
        last,
        `the run did not finish: the trace has no end record (${
          lastStep === null
            ? "no step recorded"
            : `last step recorded: ${lastStep}`
        }); it was stopped, crashed or is still running`,
      );
    } else {
      const after = lines.find((l) =>
        l.line > end.line &&
        (l.rec.kind === "forward" || l.rec.kind === "step" ||
          l.rec.kind === "generate")
      );
      if (after) {
        v(after.line, `a ${after.rec.kind} record after the end record`);
      }
      const want = lastStep === null ? 0 : lastStep + 1;
      if (end.rec.globalStep !== want) {
        v(
          end.line,
          `the end record says ${end.rec.globalStep} steps, the last step recorded is ${lastStep}`,
        );
      }
      const done = ctx.run?.completedSteps;
      if (ctx.run && done === null) {
        v(
          end.line,
          `${ctx.run.dir}/run_complete.json is missing although the trace ended`,
        );
      } else if (ctx.run && done !== end.rec.globalStep) {
        v(
          end.line,
          `run_complete.json says ${done} steps, the trace's end record ${end.rec.globalStep}`,
        );
      }
    }
    return { checked: 1, violations };
  },
};

const stepsCoverRun: Checker = {
  name: "steps-cover-run",
  description:
    "the trace records every optimizer step of the run: 0 .. (steps completed, or training.max_steps) - 1",
  check(lines, ctx) {
    const end = ends(lines).at(-1)?.rec.globalStep;
    const n = end ?? ctx.run?.completedSteps ?? ctx.expect?.maxSteps ?? null;
    if (n === null) return { checked: 0, violations: [] };
    const seen = new Set(steps(lines).map((s) => s.rec.globalStep));
    const missing = [...Array(n).keys()].filter((s) => !seen.has(s));
    const extra = [...seen].filter((s) => s >= n);
    const violations: Violation[] = [];
    const source = end !== undefined
      ? "the end record"
      : ctx.run?.completedSteps != null
      ? "run_complete.json"
      : "training.max_steps";
    if (missing.length > 0) {
      const shown = missing.length > 6
        ? `${missing.slice(0, 3).join(", ")}, ..., ${missing.at(-1)}`
        : missing.join(", ");
      violations.push({
        line: lines[lines.length - 1].line,
        invariant: "steps-cover-run",
        message:
          `${missing.length} of ${n} steps (per ${source}) have no step record: ${shown}`,
      });
    }
    if (extra.length > 0) {
      violations.push({
        line: lines[lines.length - 1].line,
        invariant: "steps-cover-run",
        message: `steps ${
          extra.join(", ")
        } recorded beyond the run's ${n} steps (per ${source})`,
      });
    }
    return { checked: n, violations };
  },
};

const configPresent: Checker = {
  name: "config-present",
  description:
    "the run folder holds the config.yaml the trace is checked against",
  check(lines, ctx) {
    if (!ctx.run) return { checked: 0, violations: [] };
    return {
      checked: 1,
      violations: ctx.run.configPresent ? [] : [{
        line: lines[0].line,
        invariant: "config-present",
        message:
          `${ctx.run.dir}/config.yaml is missing: the schedule, pass count, window, seed and buffer cannot be checked against the run's config`,
      }],
    };
  },
};

const traceDetail: Checker = {
  name: "trace-detail",
  description:
    "steps the header marks as detailed carry full arrays and observations, and every rollout forward of their generation calls",
  check(lines) {
    const header = lines[0].rec as RunRecord;
    const detailed = (s: number) => isDetailedStep(header.detailSteps, s);
    const violations: Violation[] = [];
    const v = (line: number, message: string) =>
      violations.push({ line, invariant: "trace-detail", message });
    let checked = 0;
    const rolloutLines = new Map<string, number>();
    for (const f of forwards(lines)) {
      const r = f.rec;
      if (!detailed(r.globalStep)) continue;
      if (r.purpose === "rollout") {
        const k = `${r.globalStep}/${r.microBatch}`;
        rolloutLines.set(k, (rolloutLines.get(k) ?? 0) + 1);
        continue;
      }
      checked++;
      if (r.detail !== "full") {
        v(
          f.line,
          `step ${r.globalStep} is a detailed step but this ${r.purpose} forward is a summary line`,
        );
      } else if (
        r.purpose === "train" && r.inputKind === "inputs_embeds" &&
        r.logitsLen > 0 && r.observed === null
      ) {
        v(
          f.line,
          `step ${r.globalStep} micro-batch ${r.microBatch} pass ${r.pass}: a detailed training forward without the recorder's observations`,
        );
      }
    }
    for (const g of generations(lines)) {
      const r = g.rec;
      if (!detailed(r.globalStep)) continue;
      checked++;
      const n = rolloutLines.get(`${r.globalStep}/${r.microBatch}`) ?? 0;
      if (n !== r.forwards) {
        v(
          g.line,
          `step ${r.globalStep} micro-batch ${r.microBatch}: generation counted ${r.forwards} forwards but ${n} rollout forward lines were written`,
        );
      }
    }
    return { checked, violations };
  },
};

export const COMPLETENESS_CHECKERS: Checker[] = [
  runFinished,
  stepsCoverRun,
  configPresent,
  traceDetail,
];
