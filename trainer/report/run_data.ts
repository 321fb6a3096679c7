/**
 * Everything the run report shows, read from a run folder: the resolved
 * config, `metrics.jsonl`, the channel of every step and the evaluation
 * outputs, plus the audit verdict its caller computed (`trainer/` never
 * runs the audit itself: it lives in `audit/`, above). Reading is forgiving
 * (a run may be unfinished, or have no trace); derivations are pure
 * functions.
 */
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { RESOLVED_CONFIG_FILE } from "../config/mod.ts";
import { TRACE_FILE } from "../trace/schema.ts";
import { METRICS_FILE } from "../loop/metrics.ts";
import { RUN_COMPLETE_FILE } from "../loop/run_dir.ts";
import { planStep } from "../stage2/schedule.ts";
import {
  EVAL_SAMPLES_FILE,
  EVAL_SUMMARY_FILE,
  type EvalSummary,
} from "../eval/summary.ts";
import type { EvalSampleRecord } from "../eval/record.ts";

/**
 * The trace audit's verdict as the report shows it; `stage2 audit`'s
 * report (`auditRun` in `audit/trace`) has this shape.
 */
export interface AuditVerdict {
  /**
   * PASS: every invariant holds; INCOMPLETE: only completeness invariants
   * fail (the run did not finish, the trace is cut short, steps or the
   * config are missing); FAIL: anything else.
   */
  verdict: "PASS" | "FAIL" | "INCOMPLETE";
  /** The trace's level ("summary" or "full"). */
  level: string;
  records: { forwards: number; steps: number; resumes: number };
  invariants: {
    name: string;
    description: string;
    checked: number;
    violations: number;
  }[];
  violations: { line: number; invariant: string; message: string }[];
}

/** What the caller got when it audited the run's trace: the verdict, or why the audit could not run. */
export type AuditOutcome = { report: AuditVerdict } | { error: string };

/** One parsed `metrics.jsonl` line: step, kind and its numeric values. */
export interface MetricsPoint {
  step: number;
  kind: string;
  values: Record<string, number>;
}

/** Channel of one optimizer step. */
export interface StepChannel {
  step: number;
  channel: "A" | "B" | "sft";
  fresh: boolean;
  reuse: boolean;
}

export interface RunData {
  runDir: string;
  /** The resolved config (parsed YAML) and its text; null when missing. */
  config: Record<string, unknown> | null;
  configText: string | null;
  metrics: MetricsPoint[];
  /** Per step, from the trace when it has step records, else the config. */
  channels: StepChannel[];
  channelSource: "trace" | "config" | null;
  summary: EvalSummary | null;
  samples: EvalSampleRecord[];
  /** The run folder holds a `trace.jsonl`. */
  hasTrace: boolean;
  /** The caller's audit of `trace.jsonl`; null when it was not audited. */
  audit: AuditOutcome | null;
  /** Completed steps (`run_complete.json`), null for an unfinished run. */
  completedSteps: number | null;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Parses `metrics.jsonl` text; torn or non-JSON lines are skipped. */
export function parseMetrics(text: string): MetricsPoint[] {
  const out: MetricsPoint[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line);
    } catch {
      continue; // a line cut by a kill
    }
    if (typeof o.step !== "number" || typeof o.kind !== "string") continue;
    const values: Record<string, number> = {};
    for (const [k, v] of Object.entries(o)) {
      if (k !== "step" && k !== "kind" && typeof v === "number") values[k] = v;
    }
    out.push({ step: o.step, kind: o.kind, values });
  }
  return out;
}

/** The last step record per global step of a trace (resumes re-record steps). */
export function channelsFromTrace(text: string): StepChannel[] {
  const byStep = new Map<number, StepChannel>();
  for (const line of text.split("\n")) {
    if (!line.includes('"kind":"step"')) continue;
    try {
      const r = JSON.parse(line);
      if (r.kind !== "step") continue;
      byStep.set(r.globalStep, {
        step: r.globalStep,
        channel: r.channel,
        fresh: r.freshRollouts === true,
        reuse: r.bufferReuse === true,
      });
    } catch {
      // torn line
    }
  }
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** The value at a key path of parsed YAML/JSON, or undefined. */
export function at(o: unknown, ...path: string[]): unknown {
  let v = o;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** What the schedule says for steps 0..steps-1 of a Stage-2 AB config. */
export function channelsFromConfig(
  config: Record<string, unknown>,
  steps: number,
): StepChannel[] {
  if (at(config, "custom", "trainer_variant") !== "stage2_ab_training") {
    return [];
  }
  const pattern = at(
    config,
    "custom",
    "extra",
    "stage2_ab",
    "schedule",
    "pattern",
  );
  if (!Array.isArray(pattern) || pattern.length === 0) return [];
  const buf = at(
    config,
    "custom",
    "extra",
    "rollout_matching",
    "rollout_buffer",
  );
  const rolloutBuffer = {
    enabled: at(buf, "enabled") === true,
    mSteps: Number(at(buf, "m_steps") ?? 1),
  };
  return Array.from({ length: steps }, (_, step) => {
    const p = planStep({
      pattern: pattern as ("A" | "B")[],
      globalStep: step,
      windowSize: 1,
      rolloutBuffer,
    });
    return {
      step,
      channel: p.channel,
      fresh: p.freshRollouts,
      reuse: p.bufferReuse,
    };
  });
}

/** Channel-B training rollouts over the run, totalled. */
export interface TrainRolloutTotals {
  bSteps: number;
  /** Rollouts generated or replayed (B steps x micro-batch x accumulation). */
  rollouts: number | null;
  invalid: number;
  drops: { poly: number; unknown: number; bbox_invalid: number };
  matched: number;
  fp: number;
  fn: number;
  gateRejections: number;
}

/**
 * Totals of the per-step Channel-B counters. A `train` line holds, for each
 * counter, the mean over the B steps of its logging window (the loop
 * averages a counter over the steps that reported it), so the window's total
 * is that mean times its number of B steps.
 */
export function trainRolloutTotals(
  metrics: readonly MetricsPoint[],
  channels: readonly StepChannel[],
  rolloutsPerStep: number | null,
): TrainRolloutTotals | null {
  const isB = new Set(
    channels.filter((c) => c.channel === "B").map((c) => c.step),
  );
  const t: TrainRolloutTotals = {
    bSteps: isB.size,
    rollouts: rolloutsPerStep === null ? null : isB.size * rolloutsPerStep,
    invalid: 0,
    drops: { poly: 0, unknown: 0, bbox_invalid: 0 },
    matched: 0,
    fp: 0,
    fn: 0,
    gateRejections: 0,
  };
  let seen = false;
  let prev = 0;
  for (const m of metrics.filter((x) => x.kind === "train")) {
    // the line at step s covers optimizer steps prev .. s-1
    let nB = 0;
    for (let s = prev; s < m.step; s++) if (isB.has(s)) nB++;
    prev = m.step;
    const v = (k: string) => (m.values[k] ?? 0) * nB;
    if ("match/matched" in m.values) seen = true;
    t.invalid += v("stage2/invalid_rollout");
    t.drops.poly += v("stage2/drop_poly");
    t.drops.unknown += v("stage2/drop_unknown");
    t.drops.bbox_invalid += v("stage2/drop_bbox_invalid");
    t.matched += v("match/matched");
    t.fp += v("match/fp");
    t.fn += v("match/fn");
    t.gateRejections += v("match/gate_rejections");
  }
  return seen || isB.size > 0 ? t : null;
}

/**
 * Reads a run folder for the report, with the caller's audit of its trace
 * (if any). Throws only when it is not a folder.
 */
export async function readRunData(
  runDir: string,
  audit: AuditOutcome | null = null,
): Promise<RunData> {
  const info = await Deno.stat(runDir);
  if (!info.isDirectory) throw new Error(`${runDir} is not a folder`);
  const configText = await readText(join(runDir, RESOLVED_CONFIG_FILE));
  let config: Record<string, unknown> | null = null;
  if (configText !== null) {
    try {
      const c = parseYaml(configText);
      if (c && typeof c === "object") config = c as Record<string, unknown>;
    } catch {
      config = null;
    }
  }
  const metrics = parseMetrics(
    (await readText(join(runDir, METRICS_FILE))) ?? "",
  );
  const traceText = await readText(join(runDir, TRACE_FILE));
  let channels = traceText ? channelsFromTrace(traceText) : [];
  let channelSource: RunData["channelSource"] = channels.length
    ? "trace"
    : null;
  const lastStep = Math.max(0, ...metrics.map((m) => m.step));
  if (channels.length === 0 && config) {
    channels = channelsFromConfig(config, lastStep);
    if (channels.length) channelSource = "config";
  }
  const summaryText = await readText(join(runDir, EVAL_SUMMARY_FILE));
  let summary: EvalSummary | null = null;
  try {
    summary = summaryText ? JSON.parse(summaryText) : null;
  } catch {
    summary = null;
  }
  const samples: EvalSampleRecord[] = [];
  for (
    const line of ((await readText(join(runDir, EVAL_SAMPLES_FILE))) ?? "")
      .split("\n")
  ) {
    if (!line.trim()) continue;
    try {
      samples.push(JSON.parse(line));
    } catch {
      // torn line
    }
  }
  let completedSteps: number | null = null;
  try {
    const rc = await readText(join(runDir, RUN_COMPLETE_FILE));
    if (rc) completedSteps = JSON.parse(rc).global_step ?? null;
  } catch {
    completedSteps = null;
  }
  return {
    runDir,
    config,
    configText,
    metrics,
    channels,
    channelSource,
    summary,
    samples,
    hasTrace: traceText !== null,
    audit,
    completedSteps,
  };
}
