/**
 * The training trace: one JSON object per line in `<run>/trace.jsonl`.
 *
 * Writers: the model reports a `ForwardTraceInfo` per forward, read off
 * the plan its compute used, and hands the recorder the tensors it consumed
 * and produced (through `setTracer`); the recorder observes those tensors
 * itself (`observe.ts`: token ids, soft rows recomputed from the previous
 * pass's logits, tape connectivity) and records generation calls; the
 * loop/variants add only the step context. Reader: `stage2 audit --run`
 * (`audit/trace/`), which re-checks every forward-contract, Channel-A,
 * schedule, seed and completeness invariant of design §2 from these lines.
 *
 * Keys are camelCase. Position indices are 0-based token positions within a
 * batch row (for packed rows: within the packed row). Every per-row array is
 * indexed by batch row first (`[B][...]`).
 *
 * This module imports only zod, so the audit CLI stays free of TF.js.
 */
import { z } from "zod";

/** Bumped on any incompatible change of the line format. */
export const TRACE_VERSION = 3;

const nonneg = z.int().min(0);
const posInt = z.int().min(1);

/** `[start, length]` of one attention segment (a packed sample) in a row. */
export const SegmentSchema = z.tuple([nonneg, posInt]);
export type Segment = z.infer<typeof SegmentSchema>;

/** The verbosity of a trace (config `training.trace`). */
export const TraceLevelSchema = z.enum(["off", "summary", "full"]);
export type TraceLevel = z.infer<typeof TraceLevelSchema>;

/** Which step context a forward ran in. "eval" = periodic evaluation. */
export const ChannelSchema = z.enum(["A", "B", "sft", "eval"]);
export type Channel = z.infer<typeof ChannelSchema>;

/**
 * What a forward was for. "train": a forward whose logits feed a loss (all
 * training-forward rules apply, also to Channel-A no-grad passes); "rollout":
 * one KV-cached generation forward (exempt from the cache and logits rules);
 * "eval": an evaluation-loss forward (cache off, full logits, no gradients).
 */
export const PurposeSchema = z.enum(["train", "rollout", "eval"]);
export type Purpose = z.infer<typeof PurposeSchema>;

/**
 * What the model reports about one `forward` call. Filled by the model from
 * the arguments it actually received and the tensors it actually used, not
 * from what the caller intended.
 */
export const ForwardTraceInfoSchema = z.strictObject({
  /** Which input the forward received; anything but one of the two is a violation. */
  inputKind: z.enum(["input_ids", "inputs_embeds", "both", "none"]),
  /** Keys of the forward arguments whose value was not `undefined`. */
  argKeys: z.array(z.string()),
  /** The `useCache` flag in force. */
  useCache: z.boolean(),
  /** True when a past key/value cache was passed in. */
  cacheIn: z.boolean(),
  /** True when the output carried past key/values (not null). */
  returnedPast: z.boolean(),
  /** B of the input. */
  batch: posInt,
  /** T of the input. */
  seqLen: posInt,
  /** Positions covered by the returned logits ([B, logitsLen, V]). */
  logitsLen: nonneg,
  /** Rows of the `positionIds` received (3 = mRoPE, 4 = [text; t; h; w]); null = none passed. */
  positionIdsRows: z.union([z.literal(3), z.literal(4), z.null()]),
  /** Row 0 (text positions) of 4-row position ids, per batch row: [B][T]; null otherwise. */
  row0: z.array(z.array(z.int())).nullable(),
  /** The three mRoPE rows (t, h, w) the forward used, per batch row: [B][3][T]; null if not reported. */
  mrope: z.array(z.array(z.array(z.int()))).nullable(),
  /**
   * The `[start, len]` segments read off the attention blocks the kernels
   * executed (the fused kernel's input on the blas path, the source of the
   * additive masks on wasm; not off row 0), per batch row: [B][nSeg]; null
   * when they are not block-causal over this forward's own tokens (a cached
   * or left-padded generation forward).
   */
  attentionSegments: z.array(z.array(SegmentSchema)).nullable(),
  /** How the executed attention breaks block-causal attention (a query seeing a later key, a hole, a query in no block), or null. */
  attentionMaskProblem: z.string().nullable(),
  /** Image-placeholder rows found in the input (by id, or by bitwise equality of embeddings). */
  placeholderRows: nonneg,
  /** Visual feature rows produced by the vision tower (0 without pixel values). */
  visualFeatures: nonneg,
  /**
   * With `inputsEmbeds` and images: true when every placeholder row of the
   * received embeddings is bitwise equal to the placeholder token's embedding
   * at every position where the teacher-forced ids hold the placeholder
   * token; null when not applicable (input ids, or no images).
   */
  placeholderBitwiseEqual: z.boolean().nullable(),
});
export type ForwardTraceInfo = z.infer<typeof ForwardTraceInfoSchema>;

/**
 * Problems found when the line was written (null = fine). Summary traces
 * drop the per-token arrays, so the audit relies on these there; for full
 * traces the audit recomputes them from the arrays.
 */
export const ForwardChecksSchema = z.strictObject({
  /** Segments derived from row 0, per batch row (null without row 0). */
  segments: z.array(z.array(SegmentSchema)).nullable(),
  row0: z.string().nullable(),
  mrope: z.string().nullable(),
  attention: z.string().nullable(),
});
export type ForwardChecks = z.infer<typeof ForwardChecksSchema>;

/** Step context the loop/variant attaches to a model forward. */
export const ForwardContextSchema = z.strictObject({
  /** Optimizer step being built (updates done before this window). */
  globalStep: nonneg,
  channel: ChannelSchema,
  purpose: PurposeSchema,
  /** Micro-batch index within the accumulation window. */
  microBatch: nonneg,
  /** 0-based pass index within the micro-batch (Channel A: 0..nPasses-1). */
  pass: nonneg,
  nPasses: posInt,
  /** True when the forward ran under a gradient tape. */
  gradRecorded: z.boolean(),
  /** The model's train/eval mode flag. */
  training: z.boolean(),
  /** True when the rows are padding-free packed sequences. */
  packed: z.boolean(),
  /**
   * Per batch row, the lengths of the samples in it, padding excluded:
   * [B][n] (the collator's `segmentLengths`). Row 0 must restart exactly at
   * these boundaries. Null when unknown (then only row 0's own shape is checked).
   */
  segmentLengths: z.array(z.array(posInt)).nullable(),
});
export type ForwardContext = z.infer<typeof ForwardContextSchema>;

/**
 * A linear digest of one embedding row x [H]: `[|x|, r1 . x, r2 . x]` with
 * two fixed +-1/sqrt(H) vectors (`trainer/trace/observe.ts`). Linear, so
 * the audit can tell a row that is `base + soft` from one that is `soft`.
 */
export const DigestSchema = z.tuple([z.number(), z.number(), z.number()]);
export type Digest = z.infer<typeof DigestSchema>;

/**
 * One coord slot of a training forward, as the recorder observed it: the
 * position p, the teacher-forced token id there (read off pass 0's
 * inputs_embeds by exact lookup in the embedding table), and on later
 * passes the digests of the row fed, of the row recomputed by the recorder
 * from the previous pass's logits at p - 1 and the embedding table
 * (`softmax(z[p-1, coord_ids] / T) @ E(coord_ids)`, float64) and of the
 * base row E(id). Digests are null on pass 0.
 */
export const SlotObservationSchema = z.strictObject({
  p: nonneg,
  id: nonneg,
  fed: DigestSchema.nullable(),
  want: DigestSchema.nullable(),
  base: DigestSchema.nullable(),
});
export type SlotObservation = z.infer<typeof SlotObservationSchema>;

/**
 * What the recorder observed on the tensors a training forward consumed
 * (detailed forwards on the `inputsEmbeds` path only). Nothing here is
 * reported by the trainer about itself.
 */
export const ObservedSchema = z.strictObject({
  /**
   * Per batch row [B][m]: on pass 0, positions whose fed row is no row of
   * the embedding table; on later passes, positions outside the coord slots
   * whose fed row differs bitwise from pass 0's E(id).
   */
  foreignRows: z.array(z.array(nonneg)),
  /** Per batch row, the coord-token positions and their digests: [B][k]. */
  slots: z.array(z.array(SlotObservationSchema)),
  /**
   * Under a gradient tape: whether the fed inputs_embeds is computed, by
   * operations recorded on the active tape, from the embedding weights (so
   * the loss's gradient reaches them through the base rows); null when no
   * tape was recording.
   */
  embedsOnTape: z.boolean().nullable(),
});
export type Observed = z.infer<typeof ObservedSchema>;

/** A forward line. */
export const ForwardRecordSchema = z.strictObject({
  kind: z.literal("forward"),
  /** "full" keeps every array; "summary" nulls row0 and mrope and observes nothing. */
  detail: z.enum(["full", "summary"]),
  ...ForwardContextSchema.shape,
  ...ForwardTraceInfoSchema.shape,
  checks: ForwardChecksSchema,
  /** The recorder's own observations (detailed training forwards on the inputsEmbeds path), else null. */
  observed: ObservedSchema.nullable(),
});
export type ForwardRecord = z.infer<typeof ForwardRecordSchema>;

/**
 * One generation call (Channel-B rollouts), recorded by the model's
 * `generate` around the decode: what the call received (request count,
 * decode mode, seeds) and how many model forwards it ran.
 */
export const GenerateRecordSchema = z.strictObject({
  kind: z.literal("generate"),
  globalStep: nonneg,
  channel: ChannelSchema,
  purpose: PurposeSchema,
  microBatch: nonneg,
  /** Prompts in the call. */
  requests: posInt,
  mode: z.enum(["greedy", "sample"]),
  /** The per-request seeds the call received (null: none passed). */
  seeds: z.array(z.int()).nullable(),
  maxNewTokens: nonneg,
  /** Model forwards run inside the call (prefill + decode steps). */
  forwards: nonneg,
  /** New tokens per request. */
  newTokens: z.array(nonneg),
});
export type GenerateRecord = z.infer<typeof GenerateRecordSchema>;

/** Schedule letters of `custom.extra.stage2_ab.schedule.pattern`. */
export const PatternLetterSchema = z.enum(["A", "B"]);

/** One optimizer step (accumulation window), written after the update. */
export const StepRecordSchema = z.strictObject({
  kind: z.literal("step"),
  globalStep: nonneg,
  /** The schedule pattern in force; null for variants without one (sft). */
  pattern: z.array(PatternLetterSchema).min(1).nullable(),
  channel: z.enum(["A", "B", "sft"]),
  /** The run's training seed (a safe integer, so the seed formula is exact). */
  trainingSeed: z.int(),
  /** `(trainingSeed + globalStep * 1000003) & 0x7FFFFFFF`; null without fresh rollouts. */
  rolloutSeedBase: z.int().nullable(),
  /** True when this step generated new rollouts. */
  freshRollouts: z.boolean(),
  /** True when this step reused a buffered Channel-B window. */
  bufferReuse: z.boolean(),
  /** Micro-batches in this window (always `gradient_accumulation_steps`: windows are full). */
  windowSize: posInt,
});
export type StepRecord = z.infer<typeof StepRecordSchema>;

/** What the resolved config promises; the audit holds the trace to it. */
export const RunExpectSchema = z.strictObject({
  /** `custom.extra.stage2_ab.schedule.pattern` (null for sft). */
  pattern: z.array(PatternLetterSchema).min(1).nullable(),
  /** `custom.extra.stage2_ab.n_softctx_iter` (null for sft). */
  nSoftctxIter: posInt.nullable(),
  /** `training.gradient_accumulation_steps`. */
  gradientAccumulationSteps: posInt,
  /** `training.seed` (the seed every step record must log). */
  trainingSeed: z.int().optional(),
  /** `custom.extra.rollout_matching.rollout_buffer`. */
  rolloutBuffer: z.strictObject({ enabled: z.boolean(), mSteps: posInt })
    .optional(),
  /** `training.max_steps` (the steps a finished run must cover). */
  maxSteps: nonneg.optional(),
});
export type RunExpect = z.infer<typeof RunExpectSchema>;

/** First line of a trace. */
export const RunRecordSchema = z.strictObject({
  kind: z.literal("run"),
  version: z.literal(TRACE_VERSION),
  level: z.enum(["summary", "full"]),
  /** `custom.trainer_variant`. */
  variant: z.string(),
  /**
   * Which steps carry full detail at level "summary": steps below `first`
   * and every multiple of `every`; null at level "full" (all steps).
   */
  detailSteps: z.strictObject({ first: nonneg, every: posInt }).nullable(),
  /** Config facts to check against (absent: the run's config.yaml). */
  expect: RunExpectSchema.optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** Written when a checkpoint for `globalStep` completed updates is saved. */
export const CheckpointRecordSchema = z.strictObject({
  kind: z.literal("checkpoint"),
  /** Completed optimizer updates in the checkpoint. */
  globalStep: nonneg,
});
export type CheckpointRecord = z.infer<typeof CheckpointRecordSchema>;

/** Written when a run resumes; everything after the restored point was truncated. */
export const ResumeRecordSchema = z.strictObject({
  kind: z.literal("resume"),
  /** Completed optimizer updates restored (the next step built is this one). */
  globalStep: nonneg,
});
export type ResumeRecord = z.infer<typeof ResumeRecordSchema>;

/** Written once when the run finished all its steps (never by a stopped or crashed run). */
export const EndRecordSchema = z.strictObject({
  kind: z.literal("end"),
  /** Completed optimizer updates. */
  globalStep: nonneg,
});
export type EndRecord = z.infer<typeof EndRecordSchema>;

export const TraceLineSchema = z.discriminatedUnion("kind", [
  RunRecordSchema,
  ForwardRecordSchema,
  GenerateRecordSchema,
  StepRecordSchema,
  CheckpointRecordSchema,
  ResumeRecordSchema,
  EndRecordSchema,
]);

/** Whether step `step` carries full detail under a header's `detailSteps`. */
export function isDetailedStep(
  detailSteps: RunRecord["detailSteps"],
  step: number,
): boolean {
  return detailSteps === null || step < detailSteps.first ||
    step % detailSteps.every === 0;
}
export type TraceLine = z.infer<typeof TraceLineSchema>;

/** File name of the trace inside a run folder. */
export const TRACE_FILE = "trace.jsonl";
