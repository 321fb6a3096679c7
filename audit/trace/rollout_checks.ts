/**
 * Invariants of Channel-B rollouts, from the `generate` lines the model's
 * `generate` wrote around each call: every step that claims fresh
 * rollouts really generated, per micro-batch, and the seeds generation
 * received derive from the seed base the step logged (design §2,
 * "Scheduling and seeding").
 */
import { expectedRequestSeed } from "./seed.ts";
import type { ParsedLine } from "./parse.ts";
import {
  type Checker,
  type GenerateLine,
  generations,
  steps,
  type Violation,
} from "./types.ts";

/** Generate lines per step, in line order. */
function byStep(lines: ParsedLine[]): Map<number, GenerateLine[]> {
  const out = new Map<number, GenerateLine[]>();
  for (const g of generations(lines)) {
    if (g.rec.purpose !== "rollout") continue;
    const list = out.get(g.rec.globalStep) ?? [];
    list.push(g);
    out.set(g.rec.globalStep, list);
  }
  return out;
}

const rolloutsRan: Checker = {
  name: "rollouts-ran",
  description:
    "every step with fresh rollouts called generation for each micro-batch, which ran model forwards",
  check(lines) {
    const violations: Violation[] = [];
    const gens = byStep(lines);
    let checked = 0;
    for (const sl of steps(lines)) {
      const s = sl.rec;
      if (!s.freshRollouts) continue;
      checked++;
      const got = gens.get(s.globalStep) ?? [];
      const missing = [...Array(s.windowSize).keys()].filter((mb) =>
        !got.some((g) => g.rec.microBatch === mb)
      );
      if (missing.length > 0) {
        violations.push({
          line: sl.line,
          invariant: "rollouts-ran",
          message:
            `step ${s.globalStep}: claims fresh rollouts but generation was never called for micro-batch${
              missing.length > 1 ? "es" : ""
            } ${
              missing.join(", ")
            }; Channel B must train on the model's own rollouts`,
        });
        continue;
      }
      const idle = got.find((g) => g.rec.forwards === 0);
      if (idle) {
        violations.push({
          line: idle.line,
          invariant: "rollouts-ran",
          message:
            `step ${s.globalStep} micro-batch ${idle.rec.microBatch}: generation ran no model forward`,
        });
      }
    }
    return { checked, violations };
  },
};

const generationSeeds: Checker = {
  name: "generation-seeds",
  description:
    "the seeds generation received are (logged rolloutSeedBase + request index) & 0x7FFFFFFF, request by request",
  check(lines) {
    const violations: Violation[] = [];
    const gens = byStep(lines);
    let checked = 0;
    for (const sl of steps(lines)) {
      const s = sl.rec;
      const base = s.rolloutSeedBase;
      if (!s.freshRollouts || base === null) continue;
      const list = [...(gens.get(s.globalStep) ?? [])].sort((a, b) =>
        a.rec.microBatch - b.rec.microBatch
      );
      let index = 0;
      for (const g of list) {
        checked++;
        const seeds = g.rec.seeds;
        const want = Array.from(
          { length: g.rec.requests },
          (_, i) => expectedRequestSeed(base, index + i),
        );
        index += g.rec.requests;
        if (seeds === null) {
          if (g.rec.mode === "sample") {
            violations.push({
              line: g.line,
              invariant: "generation-seeds",
              message:
                `step ${s.globalStep} micro-batch ${g.rec.microBatch}: sampled generation received no seeds (expected ${
                  JSON.stringify(want)
                })`,
            });
          }
          continue;
        }
        if (JSON.stringify(seeds) !== JSON.stringify(want)) {
          violations.push({
            line: g.line,
            invariant: "generation-seeds",
            message:
              `step ${s.globalStep} micro-batch ${g.rec.microBatch}: generation received seeds ${
                JSON.stringify(seeds)
              }, but the logged rolloutSeedBase ${base} gives ${
                JSON.stringify(want)
              }`,
          });
        }
      }
    }
    return { checked, violations };
  },
};

export const ROLLOUT_CHECKERS: Checker[] = [rolloutsRan, generationSeeds];
