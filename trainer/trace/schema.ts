/**
 * The training trace: one JSON object per line in `<run>/trace.jsonl`.
 *
 * Writers: the model reports a `ForwardTraceInfo` per forward (through
 * `setTracer`), the loop/variants add the step context, and
 * `trainer/trace/recorder.ts` writes the lines. Reader: `stage2 audit --run`
 * (`audit/trace/`), which re-checks every forward-contract, schedule and seed
 * invariant of design §2 from these lines alone.
 *
 * Keys are camelCase. Position indices are 0-based token positions within a
 * batch row (for packed rows: within the packed row). Every per-row array is
 * indexed by batch row first (`[B][...]`).
 *
 * This module imports only zod, so the audit CLI stays free of TF.js.
 */
import { z } from "zod";

/** Bumped on any incompatible change of the line format. */
export const TRACE_VERSION = 2;

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
  /** The `[start, len]` segments the attention mask actually used, per batch row: [B][nSeg]. */
  attentionSegments: z.array(z.array(SegmentSchema)),
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
 * Channel-A soft-context facts for one pass (null arrays in summary traces).
 * All arrays are per batch row, in the same slot order.
 */
export const SoftctxTraceSchema = z.strictObject({
  /** Coord-slot positions p (the coord tokens of the answer): [B][k]. */
  coordSlots: z.array(z.array(nonneg)).nullable(),
  /** Logits positions read to build each slot's soft embedding (must be p-1): [B][k]. */
  sourcePositions: z.array(z.array(z.int())).nullable(),
  /** Rows of the forward's inputs_embeds that differ from the fresh base embedding: [B][m]. */
  changedRows: z.array(z.array(nonneg)).nullable(),
  /** Number of coord slots over the batch (kept in summary traces). */
  nSlots: nonneg,
  /** True when this pass's base came from an embedding-module call on the teacher-forced ids. */
  baseFresh: z.boolean(),
});
export type SoftctxTrace = z.infer<typeof SoftctxTraceSchema>;

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
  shift: z.string().nullable(),
  changedRows: z.string().nullable(),
  softctxApplied: z.string().nullable(),
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
  /** Channel-A soft-context facts; null outside Channel A. */
  softctx: SoftctxTraceSchema.nullable(),
});
export type ForwardContext = z.infer<typeof ForwardContextSchema>;

/** A forward line. */
export const ForwardRecordSchema = z.strictObject({
  kind: z.literal("forward"),
  /** "full" keeps every array; "summary" nulls row0, mrope and softctx arrays. */
  detail: z.enum(["full", "summary"]),
  ...ForwardContextSchema.shape,
  ...ForwardTraceInfoSchema.shape,
  checks: ForwardChecksSchema,
});
export type ForwardRecord = z.infer<typeof ForwardRecordSchema>;

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
});
export type RunExpect = z.infer<typeof RunExpectSchema>;

/** First line of a trace. */
export const RunRecordSchema = z.strictObject({
  kind: z.literal("run"),
  version: z.literal(TRACE_VERSION),
  level: z.enum(["summary", "full"]),
  /** `custom.trainer_variant`. */
  variant: z.string(),
  /** Config facts to check against (absent: those checks are skipped). */
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

export const TraceLineSchema = z.discriminatedUnion("kind", [
  RunRecordSchema,
  ForwardRecordSchema,
  StepRecordSchema,
  CheckpointRecordSchema,
  ResumeRecordSchema,
]);
export type TraceLine = z.infer<typeof TraceLineSchema>;

/** File name of the trace inside a run folder. */
export const TRACE_FILE = "trace.jsonl";
