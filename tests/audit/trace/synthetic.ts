/**
 * A clean, realistic Stage-2 AB trace built in memory, for the audit tests:
 * pattern ["A","A","B"], 2 micro-batches per window, 3 soft-context passes,
 * each micro-batch one packed row of two image+answer samples (lengths 12
 * and 14), Channel-B rollout forwards, an eval and a checkpoint. Tests break
 * one field at a time and expect exactly that invariant to fire.
 */
import { deriveChecks } from "../../../trainer/trace/derive.ts";
import { expectedRolloutSeedBase } from "../../../audit/trace/seed.ts";
import {
  type ForwardContext,
  type ForwardRecord,
  type ForwardTraceInfo,
  type StepRecord,
  TRACE_VERSION,
  type TraceLine,
} from "../../../trainer/trace/schema.ts";
import { parseTrace } from "../../../audit/trace/parse.ts";
import { auditTrace } from "../../../audit/trace/mod.ts";

export const SEGMENTS = [12, 14];
export const T = 26;
export const SEED = 17;
export const PATTERN: ("A" | "B")[] = ["A", "A", "B"];
export const WINDOW = 2;
export const N_PASSES = 3;

/** One sample's positions: 2 text, 4 image tokens (2x2 merged grid), text. */
function sample(
  len: number,
): { text: number[]; t: number[]; h: number[]; w: number[] } {
  const text = [...Array(len).keys()];
  const t: number[] = [], h: number[] = [], w: number[] = [];
  for (let i = 0; i < len; i++) {
    if (i < 2) {
      t.push(i), h.push(i), w.push(i);
    } else if (i < 6) {
      const k = i - 2;
      t.push(2), h.push(2 + (k >> 1)), w.push(2 + (k & 1));
    } else {
      const p = 4 + (i - 6);
      t.push(p), h.push(p), w.push(p);
    }
  }
  return { text, t, h, w };
}

export function packedPositions(): { row0: number[][]; mrope: number[][][] } {
  const parts = SEGMENTS.map(sample);
  const cat = (k: "text" | "t" | "h" | "w") => parts.flatMap((p) => p[k]);
  return { row0: [cat("text")], mrope: [[cat("t"), cat("h"), cat("w")]] };
}

/** Coord slots of the two answers (one box each) in the packed row. */
export const COORD_SLOTS = [[7, 8, 9, 10, 20, 21, 22, 23]];
/** Image placeholder rows in the packed row. */
export const PLACEHOLDERS = [2, 3, 4, 5, 14, 15, 16, 17];

function info(kind: "input_ids" | "inputs_embeds"): ForwardTraceInfo {
  const { row0, mrope } = packedPositions();
  return {
    inputKind: kind,
    argKeys: [
      kind === "input_ids" ? "inputIds" : "inputsEmbeds",
      "pixelValues",
      "imageGridThw",
      "positionIds",
      "useCache",
    ],
    useCache: false,
    cacheIn: false,
    returnedPast: false,
    batch: 1,
    seqLen: T,
    logitsLen: T,
    positionIdsRows: 4,
    row0,
    mrope,
    attentionSegments: [[[0, 12], [12, 14]]],
    placeholderRows: 8,
    visualFeatures: 8,
    placeholderBitwiseEqual: kind === "inputs_embeds" ? true : null,
  };
}

function forward(ctx: ForwardContext, i: ForwardTraceInfo): ForwardRecord {
  const full = { ...ctx, ...i };
  return {
    kind: "forward",
    detail: "full",
    ...full,
    checks: deriveChecks(full),
  };
}

function rollout(step: number, mb: number, decode: boolean): ForwardRecord {
  const ctx: ForwardContext = {
    globalStep: step,
    channel: "B",
    purpose: "rollout",
    microBatch: mb,
    pass: 0,
    nPasses: 1,
    gradRecorded: false,
    training: true,
    packed: false,
    segmentLengths: null,
    softctx: null,
  };
  const len = decode ? 1 : 8;
  return forward(ctx, {
    inputKind: "input_ids",
    argKeys: decode
      ? ["inputIds", "positionIds", "useCache", "pastKeyValues", "logitsToKeep"]
      : ["inputIds", "pixelValues", "imageGridThw", "useCache", "logitsToKeep"],
    useCache: true,
    cacheIn: decode,
    returnedPast: true,
    batch: 1,
    seqLen: len,
    logitsLen: 1,
    positionIdsRows: decode ? 3 : null,
    row0: null,
    mrope: null,
    attentionSegments: [[[0, len]]],
    placeholderRows: decode ? 0 : 4,
    visualFeatures: decode ? 0 : 4,
    placeholderBitwiseEqual: null,
  });
}

function channelAt(step: number): "A" | "B" {
  return PATTERN[step % PATTERN.length];
}

export interface BuildOptions {
  steps?: number;
  /** Steps after which an eval + checkpoint is written. */
  evalAt?: number[];
}

/** The clean trace, as records (line i+1 = records[i]). */
export function buildCleanTrace(opts: BuildOptions = {}): TraceLine[] {
  const nSteps = opts.steps ?? 6;
  const evalAt = new Set(opts.evalAt ?? [3]);
  const out: TraceLine[] = [{
    kind: "run",
    version: TRACE_VERSION,
    level: "full",
    variant: "stage2_ab_training",
    expect: {
      pattern: [...PATTERN],
      nSoftctxIter: N_PASSES,
      gradientAccumulationSteps: WINDOW,
      trainingSeed: SEED,
      rolloutBuffer: { enabled: false, mSteps: 1 },
    },
  }];
  for (let s = 0; s < nSteps; s++) {
    const ch = channelAt(s);
    for (let mb = 0; mb < WINDOW; mb++) {
      const base: ForwardContext = {
        globalStep: s,
        channel: ch,
        purpose: "train",
        microBatch: mb,
        pass: 0,
        nPasses: 1,
        gradRecorded: true,
        training: true,
        packed: true,
        segmentLengths: [SEGMENTS],
        softctx: null,
      };
      if (ch === "A") {
        for (let p = 0; p < N_PASSES; p++) {
          out.push(forward({
            ...base,
            pass: p,
            nPasses: N_PASSES,
            gradRecorded: p === N_PASSES - 1,
            softctx: {
              coordSlots: COORD_SLOTS.map((r) => [...r]),
              sourcePositions: COORD_SLOTS.map((r) => r.map((x) => x - 1)),
              changedRows: p === 0 ? [[]] : COORD_SLOTS.map((r) => [...r]),
              nSlots: COORD_SLOTS[0].length,
              baseFresh: true,
            },
          }, info("inputs_embeds")));
        }
      } else {
        out.push(rollout(s, mb, false), rollout(s, mb, true));
        out.push(forward(base, info("input_ids")));
      }
    }
    const step: StepRecord = {
      kind: "step",
      globalStep: s,
      pattern: [...PATTERN],
      channel: ch,
      trainingSeed: SEED,
      rolloutSeedBase: ch === "B" ? expectedRolloutSeedBase(SEED, s) : null,
      freshRollouts: ch === "B",
      bufferReuse: false,
      windowSize: WINDOW,
    };
    out.push(step);
    if (evalAt.has(s + 1)) {
      out.push(forward({
        globalStep: s + 1,
        channel: "eval",
        purpose: "eval",
        microBatch: 0,
        pass: 0,
        nPasses: 1,
        gradRecorded: false,
        training: false,
        packed: true,
        segmentLengths: [SEGMENTS],
        softctx: null,
      }, info("input_ids")));
      out.push({ kind: "checkpoint", globalStep: s + 1 });
    }
  }
  return out;
}

export function toText(records: TraceLine[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/** Serializes, parses and audits records as the CLI would. */
export function audit(records: TraceLine[]) {
  return auditTrace(parseTrace(toText(records)));
}

/** The invariant names that fired. */
export function fired(records: TraceLine[]): string[] {
  return [...new Set(audit(records).violations.map((v) => v.invariant))].sort();
}

/** Index of the first record matching `pred` (throws if none). */
export function find(
  records: TraceLine[],
  pred: (r: TraceLine) => boolean,
): number {
  const i = records.findIndex(pred);
  if (i < 0) throw new Error("synthetic trace has no such record");
  return i;
}

export const isForward = (
  r: TraceLine,
  f: Partial<ForwardRecord>,
): r is ForwardRecord =>
  r.kind === "forward" &&
  Object.entries(f).every(([k, v]) => (r as Record<string, unknown>)[k] === v);
