/**
 * Invariants across lines: step order, the channel schedule, accumulation
 * windows, pass order, train/eval mode and the rollout seed formula
 * (design §2, "Scheduling and seeding" and "Channel A").
 */
import { expectedRolloutSeedBase } from "./seed.ts";
import { checksOf } from "./forward_checks.ts";
import type { ParsedLine } from "./parse.ts";
import {
  type Checker,
  type ForwardLine,
  forwards,
  type StepLine,
  steps,
  type Violation,
} from "./types.ts";

/** Forward lines grouped by the optimizer step they belong to (eval excluded). */
function forwardsByStep(lines: ParsedLine[]): Map<number, ForwardLine[]> {
  const out = new Map<number, ForwardLine[]>();
  for (const l of forwards(lines)) {
    if (l.rec.channel === "eval") continue;
    const g = out.get(l.rec.globalStep) ?? [];
    g.push(l);
    out.set(l.rec.globalStep, g);
  }
  return out;
}

function stepMap(lines: ParsedLine[]): Map<number, StepLine> {
  const out = new Map<number, StepLine>();
  for (const s of steps(lines)) {
    if (!out.has(s.rec.globalStep)) out.set(s.rec.globalStep, s);
  }
  return out;
}

const stepSequence: Checker = {
  name: "step-sequence",
  description:
    "steps are recorded once each, in order, and every forward lies inside its step (resume continues at the restored step)",
  check(lines) {
    const violations: Violation[] = [];
    const v = (line: number, message: string) =>
      violations.push({ line, invariant: "step-sequence", message });
    let next: number | null = null; // step the next training forward/step line must belong to
    let checked = 0;
    for (const l of lines) {
      const r = l.rec;
      if (r.kind === "resume") {
        if (next !== null && r.globalStep !== next) {
          v(
            l.line,
            `resume at step ${r.globalStep} but the trace before it ends at step ${
              next - 1
            }; lines after the restored checkpoint must be truncated (TraceRecorder.open with resumeFromStep)`,
          );
        }
        next = r.globalStep;
      } else if (r.kind === "forward") {
        checked++;
        if (next === null) next = r.globalStep;
        if (r.globalStep !== next) {
          v(
            l.line,
            `${r.channel} forward tagged step ${r.globalStep} while step ${next} is being built${
              r.channel === "eval"
                ? " (eval forwards carry the number of completed updates)"
                : ""
            }`,
          );
        }
      } else if (r.kind === "step") {
        checked++;
        if (next !== null && r.globalStep !== next) {
          v(
            l.line,
            r.globalStep < next
              ? `step ${r.globalStep} recorded again after step ${
                next - 1
              } (repeated step: was the trace truncated on resume?)`
              : `step ${r.globalStep} follows step ${
                next - 1
              }; steps ${next}..${r.globalStep - 1} are missing`,
          );
        }
        next = r.globalStep + 1;
      }
    }
    // Forwards of a step that never got its step record (not the final, possibly interrupted one).
    const recorded = stepMap(lines);
    const byStep = forwardsByStep(lines);
    const last = Math.max(-1, ...byStep.keys());
    for (const [s, fs] of byStep) {
      if (!recorded.has(s) && s !== last) {
        v(
          fs[0].line,
          `forwards of step ${s} but no step record for it; the loop must write one step record per optimizer update`,
        );
      }
    }
    return { checked, violations };
  },
};

const schedule: Checker = {
  name: "schedule",
  description:
    "channel = pattern[step % len] (Channel B on buffer-reuse steps), the same for every forward of the window",
  check(lines) {
    const violations: Violation[] = [];
    const v = (line: number, message: string) =>
      violations.push({ line, invariant: "schedule", message });
    const byStep = forwardsByStep(lines);
    const all = stepMap(lines);
    let checked = 0;
    for (const sl of steps(lines)) {
      checked++;
      const s = sl.rec;
      const tag = `step ${s.globalStep}`;
      if (s.pattern === null) {
        if (s.channel !== "sft") {
          v(
            sl.line,
            `${tag}: channel ${s.channel} without a schedule pattern; Stage-2 steps must record custom.extra.stage2_ab.schedule.pattern`,
          );
        }
      } else {
        const want = s.pattern[s.globalStep % s.pattern.length];
        if (s.bufferReuse) {
          if (s.channel !== "B") {
            v(
              sl.line,
              `${tag}: buffer-reuse step recorded as channel ${s.channel}; reuse steps are Channel B regardless of the pattern`,
            );
          }
        } else if (s.channel !== want) {
          v(
            sl.line,
            `${tag}: channel ${s.channel} but pattern ${
              JSON.stringify(s.pattern)
            }[${s.globalStep} % ${s.pattern.length}] = ${want}`,
          );
        }
      }
      if (s.bufferReuse && s.freshRollouts) {
        v(
          sl.line,
          `${tag}: both bufferReuse and freshRollouts; a step either reuses the buffer or rolls out`,
        );
      }
      if (s.bufferReuse) {
        const prev = all.get(s.globalStep - 1);
        if (prev && prev.rec.channel !== "B") {
          v(
            sl.line,
            `${tag}: buffer reuse after a Channel-${prev.rec.channel} step; only a Channel-B window can be reused`,
          );
        }
      }
      if (s.channel !== "B" && (s.freshRollouts || s.bufferReuse)) {
        v(
          sl.line,
          `${tag}: a Channel-${s.channel} step claims rollouts (freshRollouts ${s.freshRollouts}, bufferReuse ${s.bufferReuse})`,
        );
      }
      if (s.channel === "B" && !s.freshRollouts && !s.bufferReuse) {
        v(
          sl.line,
          `${tag}: Channel-B step neither rolled out nor reused a buffer`,
        );
      }
      for (const f of byStep.get(s.globalStep) ?? []) {
        if (f.rec.channel !== s.channel) {
          v(
            f.line,
            `${tag}: forward ran as channel ${f.rec.channel} in a Channel-${s.channel} window; the channel is fixed for every micro-batch of the window`,
          );
          break;
        }
      }
    }
    return { checked, violations };
  },
};

const window: Checker = {
  name: "window",
  description:
    "each step's training forwards cover micro-batches 0..windowSize-1 exactly",
  check(lines) {
    const violations: Violation[] = [];
    const byStep = forwardsByStep(lines);
    let checked = 0;
    for (const sl of steps(lines)) {
      checked++;
      const s = sl.rec;
      const train = (byStep.get(s.globalStep) ?? []).filter((f) =>
        f.rec.purpose === "train"
      );
      const seen = new Set(train.map((f) => f.rec.microBatch));
      const out = train.find((f) => f.rec.microBatch >= s.windowSize);
      if (out) {
        violations.push({
          line: out.line,
          invariant: "window",
          message:
            `step ${s.globalStep}: micro-batch ${out.rec.microBatch} outside a window of ${s.windowSize}`,
        });
        continue;
      }
      const missing = [...Array(s.windowSize).keys()].filter((m) =>
        !seen.has(m)
      );
      if (missing.length > 0) {
        violations.push({
          line: sl.line,
          invariant: "window",
          message: `step ${s.globalStep}: no training forward for micro-batch${
            missing.length > 1 ? "es" : ""
          } ${missing.join(", ")} of a window of ${s.windowSize}`,
        });
      }
    }
    return { checked, violations };
  },
};

/** Training forwards grouped by (global step, micro-batch), in line order. */
function trainPassesByMicroBatch(
  lines: Parameters<typeof forwards>[0],
): Map<string, ForwardLine[]> {
  const groups = new Map<string, ForwardLine[]>();
  for (const f of forwards(lines)) {
    if (f.rec.purpose !== "train") continue;
    const key = `${f.rec.globalStep}/${f.rec.microBatch}`;
    const g = groups.get(key) ?? [];
    g.push(f);
    groups.set(key, g);
  }
  return groups;
}

const passSequence: Checker = {
  name: "pass-sequence",
  description:
    "each micro-batch runs its training passes 0..nPasses-1 once each, in order",
  check(lines) {
    const violations: Violation[] = [];
    const groups = trainPassesByMicroBatch(lines);
    for (const g of groups.values()) {
      const n = g[0].rec.nPasses;
      const tag = `step ${g[0].rec.globalStep} micro-batch ${
        g[0].rec.microBatch
      }`;
      const bad = g.findIndex((f, i) =>
        f.rec.pass !== i || f.rec.nPasses !== n
      );
      if (bad >= 0) {
        violations.push({
          line: g[bad].line,
          invariant: "pass-sequence",
          message: `${tag}: forward ${bad} is pass ${g[bad].rec.pass}/${
            g[bad].rec.nPasses
          }, expected pass ${bad}/${n}`,
        });
      } else if (g.length !== n) {
        violations.push({
          line: g[g.length - 1].line,
          invariant: "pass-sequence",
          message:
            `${tag}: ${g.length} training passes recorded, nPasses is ${n}`,
        });
      }
    }
    return { checked: groups.size, violations };
  },
};

/** What every pass of one micro-batch must share (the same packed rows). */
function passLayout(f: ForwardLine): string {
  const r = f.rec;
  return JSON.stringify([
    r.batch,
    r.seqLen,
    r.packed,
    r.positionIdsRows,
    r.segmentLengths,
    r.attentionSegments,
    r.detail === "full" ? r.row0 : checksOf(r).segments,
    r.detail === "full" ? r.mrope : null,
    r.placeholderRows,
    r.observed?.slots.map((row) => row.map((x) => [x.p, x.id])) ?? null,
  ]);
}

const passConsistency: Checker = {
  name: "pass-consistency",
  description:
    "all soft-context passes of a micro-batch see the same rows: shape, position ids, segments, placeholders, coord slots",
  check(lines) {
    const violations: Violation[] = [];
    const groups = trainPassesByMicroBatch(lines);
    let checked = 0;
    for (const g of groups.values()) {
      if (g.length < 2) continue;
      checked++;
      const first = passLayout(g[0]);
      const diff = g.find((f) => passLayout(f) !== first);
      if (diff) {
        violations.push({
          line: diff.line,
          invariant: "pass-consistency",
          message:
            `step ${diff.rec.globalStep} micro-batch ${diff.rec.microBatch}: pass ${diff.rec.pass} differs from pass ${
              g[0].rec.pass
            } in shape, position ids, segments, placeholders or coord slots; every pass must re-run the same teacher-forced rows`,
        });
      }
    }
    return { checked, violations };
  },
};

const modeConstant: Checker = {
  name: "mode-constant",
  description: "the train/eval mode flag never changes within a step",
  check(lines) {
    const violations: Violation[] = [];
    const byStep = forwardsByStep(lines);
    for (const [s, fs] of byStep) {
      const first = fs[0].rec.training;
      const flip = fs.find((f) => f.rec.training !== first);
      if (flip) {
        violations.push({
          line: flip.line,
          invariant: "mode-constant",
          message: `step ${s}: the model's mode switched to ${
            flip.rec.training ? "train" : "eval"
          } within the step (pass ${flip.rec.pass}, micro-batch ${flip.rec.microBatch}); never toggle train/eval mode inside a step`,
        });
      }
    }
    return { checked: byStep.size, violations };
  },
};

const seedFormula: Checker = {
  name: "seed-formula",
  description:
    "rolloutSeedBase = (trainingSeed + step * 1000003) & 0x7FFFFFFF, logged on every step with fresh rollouts",
  check(lines) {
    const violations: Violation[] = [];
    let checked = 0;
    for (const sl of steps(lines)) {
      const s = sl.rec;
      if (!s.freshRollouts && s.rolloutSeedBase === null) continue;
      checked++;
      const want = expectedRolloutSeedBase(s.trainingSeed, s.globalStep);
      if (s.rolloutSeedBase === null) {
        violations.push({
          line: sl.line,
          invariant: "seed-formula",
          message:
            `step ${s.globalStep}: fresh rollouts without a logged rolloutSeedBase (expected ${want})`,
        });
      } else if (s.rolloutSeedBase !== want) {
        violations.push({
          line: sl.line,
          invariant: "seed-formula",
          message:
            `step ${s.globalStep}: rolloutSeedBase ${s.rolloutSeedBase}, expected (${s.trainingSeed} + ${s.globalStep} * 1000003) & 0x7FFFFFFF = ${want}`,
        });
      }
    }
    return { checked, violations };
  },
};

const configConsistency: Checker = {
  name: "config-consistency",
  description:
    "steps follow the run's config: pattern, n_softctx_iter passes on Channel A, accumulation window, training seed, rollout buffer",
  check(lines, ctx) {
    const expect = ctx.expect;
    if (!expect) return { checked: 0, violations: [] };
    const src = ctx.expectSource ?? "the config";
    const violations: Violation[] = [];
    const v = (line: number, message: string) =>
      violations.push({ line, invariant: "config-consistency", message });
    let checked = 0;
    const all = steps(lines);
    let reuseRun = 0;
    for (const sl of all) {
      checked++;
      const s = sl.rec;
      const tag = `step ${s.globalStep}`;
      if (JSON.stringify(s.pattern) !== JSON.stringify(expect.pattern)) {
        v(
          sl.line,
          `${tag}: pattern ${JSON.stringify(s.pattern)} but ${src} says ${
            JSON.stringify(expect.pattern)
          }`,
        );
      }
      const gas = expect.gradientAccumulationSteps;
      // Windows are always full: max_steps counts optimizer steps and the
      // data order never runs dry (see trainer/stage2/schedule.ts planStep).
      if (s.windowSize !== gas) {
        v(
          sl.line,
          `${tag}: window of ${s.windowSize} micro-batches, gradient_accumulation_steps is ${gas} in ${src}; every accumulation window must be full`,
        );
      }
      if (
        expect.trainingSeed !== undefined &&
        s.trainingSeed !== expect.trainingSeed
      ) {
        v(
          sl.line,
          `${tag}: logs training seed ${s.trainingSeed} but training.seed is ${expect.trainingSeed} in ${src}; rollout seeds must derive from the run's seed`,
        );
      }
      const buf = expect.rolloutBuffer;
      reuseRun = s.bufferReuse ? reuseRun + 1 : 0;
      if (buf && s.bufferReuse) {
        if (!buf.enabled || buf.mSteps < 2) {
          v(
            sl.line,
            `${tag}: reuses a rollout buffer but ${src} has rollout_buffer ${
              buf.enabled ? `m_steps ${buf.mSteps}` : "disabled"
            }`,
          );
        } else if (reuseRun > buf.mSteps - 1) {
          v(
            sl.line,
            `${tag}: ${reuseRun} consecutive buffer-reuse steps; m_steps ${buf.mSteps} allows ${
              buf.mSteps - 1
            } after the fresh one`,
          );
        }
      }
    }
    if (expect.nSoftctxIter !== null) {
      for (const f of forwards(lines)) {
        if (f.rec.channel !== "A" || f.rec.purpose !== "train") continue;
        checked++;
        if (f.rec.nPasses !== expect.nSoftctxIter) {
          v(
            f.line,
            `step ${f.rec.globalStep} micro-batch ${f.rec.microBatch}: Channel A ran ${f.rec.nPasses} pass(es), n_softctx_iter is ${expect.nSoftctxIter} in ${src}`,
          );
        }
      }
    }
    return { checked, violations };
  },
};

export const STEP_CHECKERS: Checker[] = [
  stepSequence,
  schedule,
  window,
  passSequence,
  passConsistency,
  modeConstant,
  seedFormula,
  configConsistency,
];
