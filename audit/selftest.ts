/**
 * `stage2 audit --selftest`: the fault-injection matrix that shows every
 * invariant catches its bug. Each trainer fault (`trainer/common/faults.ts`)
 * is injected into a tiny real Stage-2 run, whose folder is then audited
 * like any other; probe faults are injected while the probes replay the
 * clean run; run-folder damage (a cut trace, a missing config, ...) is done
 * to a copy of the clean run. A row passes only when the invariant that
 * names its fault fails, and the whole self-test passes only when every
 * row does and the clean run passes, probes included.
 *
 * The training itself needs TF.js and is supplied by the caller
 * (`trainer/selfcheck/mod.ts`'s `selftestRunner()`); this module imports
 * none.
 */
import { type Fault, FAULTS } from "../trainer/common/faults.ts";
import { TRACE_FILE } from "../trainer/trace/schema.ts";
import type { ProbeMeasurements } from "../trainer/selfcheck/probe.ts";
import { judgeProbes, type ProbeVerdict } from "./probe.ts";
import { auditRun, TraceFormatError } from "./trace/mod.ts";

/** What the trainer side provides. */
export interface SelftestRunner {
  /** Builds the shared fixture (data, tokenizer, micro model) in `dir`. */
  prepare(dir: string): Promise<void>;
  /** Trains one tiny run into `runDir` with `fault` injected (null: clean). */
  run(fault: Fault | null, runDir: string): Promise<{ crashed: string | null }>;
  /** Probes `runDir` with `fault` injected into the trainer. */
  probe(runDir: string, fault: Fault | null): Promise<ProbeMeasurements>;
}

/**
 * Trainer faults and the audit invariant that names each. The first group
 * are the bugs the audit used to pass; the second the ones it caught
 * already at the model's argument boundary.
 */
export const TRACE_FAULTS: { fault: Fault; invariant: string }[] = [
  { fault: "softctx-logits-at-p", invariant: "causal-shift" },
  { fault: "softctx-stale-base", invariant: "fresh-base-embedding" },
  { fault: "softctx-add", invariant: "softctx-replace" },
  { fault: "softctx-drop-object", invariant: "softctx-applied" },
  { fault: "attention-ignores-segments", invariant: "attention-segments" },
  { fault: "rollout-seed-mismatch", invariant: "generation-seeds" },
  { fault: "skip-rollouts", invariant: "rollouts-ran" },
  { fault: "crash-after-first-forward", invariant: "run-finished" },
  { fault: "cache-on", invariant: "cache-off" },
  { fault: "both-inputs", invariant: "input-exclusivity" },
  { fault: "position-ids-3-rows", invariant: "packing-position-ids" },
  { fault: "row0-no-restart", invariant: "row0-segments" },
  { fault: "early-passes-on-tape", invariant: "grad-last-pass" },
  { fault: "sliced-logits", invariant: "logits-coverage" },
  { fault: "schedule-off-by-one", invariant: "schedule" },
  { fault: "seed-formula-wrong", invariant: "seed-formula" },
  { fault: "n-softctx-off-by-one", invariant: "config-consistency" },
];

/** Trainer faults injected while probing the clean run, and the probe that names each. */
export const PROBE_FAULTS: { fault: Fault; probe: ProbeVerdict["name"] }[] = [
  { fault: "attention-ignores-segments", probe: "segment-isolation" },
  { fault: "cache-positions-off-by-one", probe: "kv-cache" },
  { fault: "softctx-logits-at-p", probe: "soft-rows" },
  { fault: "softctx-add", probe: "soft-rows" },
];

/** Damage done to a copy of the clean run folder, and the invariant that names it. */
export const DAMAGE: {
  damage: string;
  invariant: string;
  apply(dir: string): Promise<void>;
}[] = [
  {
    damage: "trace cut at a line boundary (after step 0)",
    invariant: "run-finished",
    apply: (dir) =>
      editTrace(dir, (lines) => {
        const i = lines.findIndex((l) => l.includes('"kind":"step"'));
        return lines.slice(0, i + 1).join("\n") + "\n";
      }),
  },
  {
    damage: "trace cut mid-line",
    invariant: "run-finished",
    apply: (dir) =>
      editTrace(dir, (lines) => {
        const text = lines.join("\n") + "\n";
        return text.slice(0, Math.floor(text.length * 0.6));
      }),
  },
  {
    damage: "run_complete.json missing",
    invariant: "run-finished",
    apply: (dir) => Deno.remove(`${dir}/run_complete.json`),
  },
  {
    damage: "config.yaml missing",
    invariant: "config-present",
    apply: (dir) => Deno.remove(`${dir}/config.yaml`),
  },
  {
    damage: "a corrupt line in the middle of the trace",
    invariant: "exit 2 (corrupt trace)",
    apply: (dir) =>
      editTrace(dir, (lines) => {
        lines[2] = lines[2].slice(0, 40);
        return lines.join("\n") + "\n";
      }),
  },
];

async function editTrace(
  dir: string,
  edit: (lines: string[]) => string,
): Promise<void> {
  const path = `${dir}/${TRACE_FILE}`;
  const lines = (await Deno.readTextFile(path)).replace(/\n$/, "").split("\n");
  await Deno.writeTextFile(path, edit(lines));
}

/** One row of the self-test's result. */
export interface SelftestRow {
  kind: "clean" | "trace" | "probe" | "damage";
  /** The fault or damage ("clean" for the clean run). */
  name: string;
  /** The invariant (or probe) that must catch it; for the clean run: all pass. */
  expected: string;
  caught: boolean;
  /** Everything that failed (invariants, probes, or the one-line error). */
  fired: string[];
  /** The audit's verdict or the probes' outcome. */
  verdict: string;
  /** The run's own crash message, when the fault crashed it. */
  crashed: string | null;
}

export interface SelftestReport {
  rows: SelftestRow[];
  ok: boolean;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** The invariants a run folder's audit fails, and its verdict. */
async function auditFolder(
  dir: string,
): Promise<{ fired: string[]; verdict: string }> {
  try {
    const r = await auditRun(dir);
    return {
      fired: [...new Set(r.violations.map((v) => v.invariant))],
      verdict: r.verdict,
    };
  } catch (e) {
    if (e instanceof TraceFormatError) {
      return { fired: ["exit 2 (corrupt trace)"], verdict: e.message };
    }
    throw e;
  }
}

/**
 * Runs the whole matrix in `workDir` (which it fills with one run folder
 * per row). `log` receives each row as it completes.
 */
export async function runSelftest(
  runner: SelftestRunner,
  workDir: string,
  log: (row: SelftestRow) => void = () => {},
): Promise<SelftestReport> {
  const rows: SelftestRow[] = [];
  const add = (r: SelftestRow) => {
    rows.push(r);
    log(r);
  };
  await runner.prepare(workDir);
  const clean = `${workDir}/run-clean`;
  const cleanRun = await runner.run(null, clean);
  const c = await auditFolder(clean);
  add({
    kind: "clean",
    name: "clean run",
    expected: "every invariant holds",
    caught: c.fired.length === 0 && cleanRun.crashed === null,
    fired: c.fired,
    verdict: c.verdict,
    crashed: cleanRun.crashed,
  });
  const cleanProbe = judgeProbes(await runner.probe(clean, null));
  add({
    kind: "clean",
    name: "clean run, probes",
    expected: "every probe holds",
    caught: cleanProbe.ok,
    fired: cleanProbe.probes.filter((p) => !p.ok).map((p) => p.name),
    verdict: cleanProbe.ok ? "PASS" : "FAIL",
    crashed: null,
  });
  for (const { fault, invariant } of TRACE_FAULTS) {
    const dir = `${workDir}/run-${fault}`;
    const r = await runner.run(fault, dir);
    const a = await auditFolder(dir);
    add({
      kind: "trace",
      name: fault,
      expected: invariant,
      caught: a.fired.includes(invariant),
      fired: a.fired,
      verdict: a.verdict,
      crashed: r.crashed,
    });
  }
  for (const { fault, probe } of PROBE_FAULTS) {
    const p = judgeProbes(await runner.probe(clean, fault));
    const failed = p.probes.filter((x) => !x.ok).map((x) => x.name);
    add({
      kind: "probe",
      name: fault,
      expected: probe,
      caught: failed.includes(probe),
      fired: failed,
      verdict: p.ok ? "PASS" : "FAIL",
      crashed: null,
    });
  }
  for (const d of DAMAGE) {
    const dir = `${workDir}/damaged-${rows.length}`;
    await copyDir(clean, dir);
    await d.apply(dir);
    const a = await auditFolder(dir);
    add({
      kind: "damage",
      name: d.damage,
      expected: d.invariant,
      caught: a.fired.includes(d.invariant),
      fired: a.fired,
      verdict: a.verdict,
      crashed: null,
    });
  }
  return { rows, ok: rows.every((r) => r.caught) };
}

/** Every fault of the trainer's switch appears in the matrix (checked by the tests). */
export function uncoveredFaults(): string[] {
  const covered = new Set<string>([
    ...TRACE_FAULTS.map((f) => f.fault),
    ...PROBE_FAULTS.map((f) => f.fault),
  ]);
  return Object.keys(FAULTS).filter((f) => !covered.has(f));
}

/** One line per row: what was injected, what had to catch it, what did. */
export function formatSelftestRow(r: SelftestRow): string {
  const mark = r.caught ? "ok  " : "MISS";
  if (r.kind === "clean") {
    return `${mark} ${r.name}: ${r.verdict}${
      r.fired.length ? ` (failed: ${r.fired.join(", ")})` : ""
    }`;
  }
  const others = r.fired.filter((f) => f !== r.expected);
  const verdict = r.verdict.includes("\n") || r.verdict.length > 60
    ? ""
    : ` [${r.verdict}]`;
  return `${mark} ${r.kind} ${r.name} -> ${r.expected}${
    r.caught ? "" : " NOT caught"
  }${verdict}${others.length ? ` (also: ${others.join(", ")})` : ""}`;
}

export function formatSelftest(rep: SelftestReport): string {
  const missed = rep.rows.filter((r) => !r.caught).length;
  return [
    ...rep.rows.map(formatSelftestRow),
    rep.ok
      ? `selftest PASS: the clean run passes and all ${
        rep.rows.length - 2
      } injected faults are caught by the invariant that names them`
      : `selftest FAIL: ${missed} row(s) not as expected`,
  ].join("\n");
}
