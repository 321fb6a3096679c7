/**
 * Invariants of single model forwards (design §2, "Forward contract"), from
 * the facts the model read off its own plan. Each checker looks at one
 * forward line at a time. What Channel A fed is in `observed_checks.ts`.
 */
import { deriveChecks } from "../../trainer/trace/derive.ts";
import type {
  ForwardChecks,
  ForwardRecord,
} from "../../trainer/trace/schema.ts";
import {
  FORWARD_KEYS,
  LOGITS_SLICING_KEY,
  snakeCaseKey,
} from "../../trainer/model/forward_keys.ts";
import { type Checker, type CheckResult, forwards } from "./types.ts";
import type { ParsedLine } from "./parse.ts";

const derived = new WeakMap<ForwardRecord, ForwardChecks>();

/**
 * The array-dependent checks of a forward: recomputed from the arrays of a
 * full trace, taken from the line's `checks` in a summary trace.
 */
export function checksOf(rec: ForwardRecord): ForwardChecks {
  if (rec.detail === "summary") return rec.checks;
  let c = derived.get(rec);
  if (!c) {
    c = deriveChecks(rec);
    derived.set(rec, c);
  }
  return c;
}

/** Forwards whose logits feed a loss or an evaluation (not generation). */
const notRollout = (r: ForwardRecord) => r.purpose !== "rollout";

/** A checker applying `problem` to every forward line that `applies`. */
export function forwardChecker(
  name: string,
  description: string,
  applies: (r: ForwardRecord) => boolean,
  problem: (r: ForwardRecord) => string | null,
): Checker {
  return {
    name,
    description,
    check(lines: ParsedLine[]): CheckResult {
      let checked = 0;
      const violations = [];
      for (const l of forwards(lines)) {
        if (!applies(l.rec)) continue;
        checked++;
        const p = problem(l.rec);
        if (p !== null) {
          violations.push({ line: l.line, invariant: name, message: p });
        }
      }
      return { checked, violations };
    },
  };
}

/** Where a forward ran, for messages. */
export const where = (r: ForwardRecord): string =>
  `step ${r.globalStep} ${r.channel}/${r.purpose} micro-batch ${r.microBatch} pass ${r.pass}/${r.nPasses}`;

/**
 * Forward arguments the model's contract defines (its own list, in camelCase
 * as in `ForwardArgs`, and HF's snake_case spellings). Anything else is a
 * helper field that leaked into the forward; logits slicing is a model
 * argument but only generation may use it. A cache carried in is reported
 * by `no-cache-carry`, not here.
 */
const MODEL_KEYS = new Set(
  FORWARD_KEYS.flatMap((k) => [k, snakeCaseKey(k)]),
);
const SLICING_KEYS = new Set([
  LOGITS_SLICING_KEY,
  snakeCaseKey(LOGITS_SLICING_KEY),
]);

function helperHint(key: string): string {
  const k = key.toLowerCase().replace(/_/g, "");
  if (k.includes("label")) return "labels belong to the loss, not the forward";
  if (k.includes("weight")) {
    return "loss weights belong to the loss, not the forward";
  }
  if (k.includes("textposition")) {
    return "text positions go in as row 0 of 4-row positionIds";
  }
  if (k.includes("channel")) return "channel tags are trainer metadata";
  return "strip trainer metadata before calling forward";
}

export const FORWARD_CHECKERS: Checker[] = [
  forwardChecker(
    "packing-position-ids",
    "packed forwards receive 4-row position ids [text; t; h; w] and their segment lengths",
    (r) => r.packed,
    (r) => {
      if (r.positionIdsRows !== 4) {
        return `${where(r)}: packed rows received ${
          r.positionIdsRows === null
            ? "no position ids"
            : `${r.positionIdsRows}-row position ids`
        }; padding-free packing needs 4-row [text; t; h; w] position ids (or set training.packing.enabled: false)`;
      }
      if (r.segmentLengths === null) {
        return `${
          where(r)
        }: packed forward traced without segmentLengths; the loop must record the collator's per-row sample lengths`;
      }
      return null;
    },
  ),
  forwardChecker(
    "row0-segments",
    "row 0 starts at 0, restarts at 0 at each packed sample and otherwise increases by 1",
    (r) => notRollout(r) && (r.packed || r.positionIdsRows === 4),
    (r) => {
      const p = checksOf(r).row0;
      return p === null ? null : `${where(r)}: ${p}`;
    },
  ),
  forwardChecker(
    "mrope-rows",
    "mRoPE rows t/h/w restart at 0 with each segment and never run ahead of row 0",
    (r) => notRollout(r) && (r.detail === "summary" || r.mrope !== null),
    (r) => {
      const p = checksOf(r).mrope;
      return p === null ? null : `${where(r)}: ${p}`;
    },
  ),
  forwardChecker(
    "attention-segments",
    "the attention masks the compute used are causal within the segments of row 0 and never cross one",
    notRollout,
    (r) => {
      const p = checksOf(r).attention;
      return p === null ? null : `${where(r)}: ${p}`;
    },
  ),
  forwardChecker(
    "cache-off",
    "training and eval forwards run with useCache false and return no past key/values",
    notRollout,
    (r) => {
      if (r.useCache) {
        return `${
          where(r)
        }: useCache is true; training forwards must pass useCache: false`;
      }
      if (r.returnedPast) {
        return `${
          where(r)
        }: the forward returned past key/values; training forwards must return none`;
      }
      return null;
    },
  ),
  forwardChecker(
    "no-cache-carry",
    "no past key/value cache enters a training forward (none travels between soft-context passes)",
    notRollout,
    (r) =>
      r.cacheIn
        ? `${where(r)}: a past key/value cache was passed in${
          r.pass > 0 ? " (carried over from an earlier soft-context pass)" : ""
        }; every training pass must start without a cache`
        : null,
  ),
  forwardChecker(
    "input-exclusivity",
    "every forward receives exactly one of inputIds / inputsEmbeds",
    () => true,
    (r) => {
      if (r.inputKind === "both") {
        return `${
          where(r)
        }: both inputIds and inputsEmbeds were passed; pass exactly one`;
      }
      if (r.inputKind === "none") {
        return `${where(r)}: neither inputIds nor inputsEmbeds was passed`;
      }
      return null;
    },
  ),
  forwardChecker(
    "channel-a-inputs-embeds",
    "Channel-A training forwards receive inputsEmbeds (and no inputIds)",
    (r) => r.channel === "A" && r.purpose === "train",
    (r) =>
      r.inputKind === "inputs_embeds"
        ? null
        : `${where(r)}: Channel A passed ${
          r.inputKind === "input_ids" ? "inputIds" : r.inputKind
        }; soft self-context must feed inputsEmbeds built from a fresh embedding call`,
  ),
  forwardChecker(
    "helper-keys",
    "only model arguments reach forward: no labels, loss weights, text positions, channel tags or logits slicing",
    () => true,
    (r) => {
      const bad = r.argKeys.filter((k) =>
        SLICING_KEYS.has(k) ? r.purpose !== "rollout" : !MODEL_KEYS.has(k)
      );
      if (bad.length === 0) return null;
      const k = bad[0];
      const hint = SLICING_KEYS.has(k)
        ? "logits slicing is for generation only; training needs full-sequence logits"
        : helperHint(k);
      return `${where(r)}: helper key${bad.length > 1 ? "s" : ""} ${
        bad.map((b) => JSON.stringify(b)).join(", ")
      } reached the model's forward (${hint})`;
    },
  ),
  forwardChecker(
    "placeholder-invariance",
    "image placeholder rows stay bitwise equal to the placeholder embedding, one per visual feature",
    notRollout,
    (r) => {
      if (r.placeholderBitwiseEqual === false) {
        return `${
          where(r)
        }: image placeholder rows of inputsEmbeds are not bitwise equal to the placeholder token's embedding; only coord-slot rows may be overwritten`;
      }
      if (r.placeholderRows !== r.visualFeatures) {
        return `${
          where(r)
        }: ${r.placeholderRows} image placeholder rows but ${r.visualFeatures} visual features`;
      }
      return null;
    },
  ),
  forwardChecker(
    "logits-coverage",
    "training and eval forwards return logits for every position",
    notRollout,
    (r) =>
      r.logitsLen === r.seqLen
        ? null
        : `${
          where(r)
        }: logits cover ${r.logitsLen} of ${r.seqLen} positions (sliced logits); training needs full-sequence logits for CE and coord decoding`,
  ),
  forwardChecker(
    "grad-last-pass",
    "only the last pass of a micro-batch records gradients; rollout and eval forwards never do",
    () => true,
    (r) => {
      if (r.pass >= r.nPasses) {
        return `${where(r)}: pass index ${r.pass} >= nPasses ${r.nPasses}`;
      }
      if (r.purpose !== "train") {
        return r.gradRecorded
          ? `${where(r)}: a ${r.purpose} forward ran under a gradient tape`
          : null;
      }
      const last = r.pass === r.nPasses - 1;
      if (last && !r.gradRecorded) {
        return `${
          where(r)
        }: the last pass did not record gradients; its logits must feed the loss inside the tape`;
      }
      if (!last && r.gradRecorded) {
        return `${
          where(r)
        }: pass ${r.pass} of ${r.nPasses} recorded gradients; passes 0..n-2 must run outside the gradient tape`;
      }
      return null;
    },
  ),
];
