/**
 * A clean, realistic Stage-2 AB trace built in memory, for the audit tests:
 * pattern ["A","A","B"], 2 micro-batches per window, 3 soft-context passes
 * (with the recorder's observations: token ids, slot digests, tape
 * connectivity), each micro-batch one packed row of two image+answer
 * samples (lengths 12 and 14), Channel-B generation calls with their
 * rollout forwards, an eval, a checkpoint and the end record. Tests break
 * one field at a time and expect exactly that invariant to fire.
 */
import { deriveChecks } from "../../../trainer/trace/derive.ts";
import {
  expectedRequestSeed,
  expectedRolloutSeedBase,
} from "../../../audit/trace/seed.ts";
import {
  type Digest,
  type ForwardContext,
  type ForwardRecord,
  type ForwardTraceInfo,
  type Observed,
  type StepRecord,
  TRACE_VERSION,
  type TraceLine,
} from "../../../trainer/trace/schema.ts";
import { parseTrace } from "../../../audit/trace/parse.ts";
import { auditTrace, type RunFacts } from "../../../audit/trace/mod.ts";

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
/** Token id of each coord slot (any coord ids). */
const SLOT_ID = (k: number) => 900 + k;
/** Digests of a slot's base row E(id) and of the recomputed soft row. */
export const BASE_DIGEST: Digest = [1.25, 0.5, -0.75];
export const SOFT_DIGEST: Digest = [0.25, 0.0625, 0.125];

/** The recorder's observations of pass `pass` (clean: soft rows fed at every slot). */
export function observed(pass: number, onTape: boolean | null): Observed {
  return {
    foreignRows: [[]],
    slots: COORD_SLOTS.map((r) =>
      r.map((p, k) => ({
        p,
        id: SLOT_ID(k),
        fed: pass === 0 ? null : [...SOFT_DIGEST] as Digest,
        want: pass === 0 ? null : [...SOFT_DIGEST] as Digest,
        base: pass === 0 ? null : [...BASE_DIGEST] as Digest,
      }))
    ),
    embedsOnTape: onTape,
  };
}

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
    attentionMaskProblem: null,
    placeholderRows: 8,
    visualFeatures: 8,
    placeholderBitwiseEqual: kind === "inputs_embeds" ? true : null,
  };
}

function forward(
  ctx: ForwardContext,
  i: ForwardTraceInfo,
  obs: Observed | null = null,
): ForwardRecord {
  const full = { ...ctx, ...i };
  return {
    kind: "forward",
    detail: "full",
    ...full,
    checks: deriveChecks(full),
    observed: obs,
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
    attentionMaskProblem: null,
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
    detailSteps: null,
    expect: {
      pattern: [...PATTERN],
      nSoftctxIter: N_PASSES,
      gradientAccumulationSteps: WINDOW,
      trainingSeed: SEED,
      rolloutBuffer: { enabled: false, mSteps: 1 },
      maxSteps: nSteps,
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
      };
      if (ch === "A") {
        for (let p = 0; p < N_PASSES; p++) {
          const last = p === N_PASSES - 1;
          out.push(forward(
            { ...base, pass: p, nPasses: N_PASSES, gradRecorded: last },
            info("inputs_embeds"),
            observed(p, last ? true : null),
          ));
        }
      } else {
        out.push(rollout(s, mb, false), rollout(s, mb, true));
        out.push({
          kind: "generate",
          globalStep: s,
          channel: "B",
          purpose: "rollout",
          microBatch: mb,
          requests: 1,
          mode: "greedy",
          seeds: [expectedRequestSeed(expectedRolloutSeedBase(SEED, s), mb)],
          maxNewTokens: 8,
          forwards: 2,
          newTokens: [2],
        });
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
      }, info("input_ids")));
      out.push({ kind: "checkpoint", globalStep: s + 1 });
    }
  }
  out.push({ kind: "end", globalStep: nSteps });
  return out;
}

export function toText(records: TraceLine[]): string {
  return records.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/**
 * The run folder of a clean synthetic run: config.yaml present, and
 * run_complete.json agreeing with the end record (absent without one).
 */
export function runFacts(records: TraceLine[]): RunFacts {
  const end = records.findLast((r) => r.kind === "end");
  return {
    dir: "runs/synthetic",
    configPresent: true,
    completedSteps: end?.kind === "end" ? end.globalStep : null,
    tornLine: null,
  };
}

/** Serializes, parses and audits records as the CLI would, in a run folder like `runFacts`'s. */
export function audit(records: TraceLine[], run: RunFacts = runFacts(records)) {
  return auditTrace(parseTrace(toText(records)), { run });
}

/** A run folder holding the trace, a config.yaml and the completion marker. */
export async function writeRunFolder(
  dir: string,
  records: TraceLine[],
): Promise<void> {
  await Deno.writeTextFile(`${dir}/trace.jsonl`, toText(records));
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    [
      "training:",
      `  seed: ${SEED}`,
      `  gradient_accumulation_steps: ${WINDOW}`,
      "custom:",
      "  trainer_variant: stage2_ab_training",
      "  extra:",
      "    stage2_ab:",
      `      schedule: { pattern: ${JSON.stringify(PATTERN)} }`,
      `      n_softctx_iter: ${N_PASSES}`,
      "",
    ].join("\n"),
  );
  const end = records.findLast((r) => r.kind === "end");
  if (end?.kind === "end") {
    await Deno.writeTextFile(
      `${dir}/run_complete.json`,
      JSON.stringify({ global_step: end.globalStep }),
    );
  }
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
