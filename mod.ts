/**
 * `stage2` library entry: the pieces of the CoordExp Stage-2 AB method,
 * usable without the trainer. Coordinates are coord-token bins 0..999 with
 * `c = k / 999` everywhere. Each export is documented, with an example, at
 * its source.
 *
 * @example
 * import { channelForStep, deriveRolloutSeedBase } from "./mod.ts";
 * channelForStep(["A", "A", "B"], 2); // "B"
 * deriveRolloutSeedBase(17, 2);       // 2000023
 *
 * @module
 */
export {
  coordToken,
  decodeCoord,
  encodeCoord,
  parseCoordToken,
} from "./trainer/coord/codec.ts";
export type { Xyxy } from "./trainer/coord/pixels.ts";
export type { GtObject } from "./trainer/data/types.ts";
export {
  type Channel,
  channelForStep,
  planStep,
  type RolloutBufferOptions,
  type StepPlan,
} from "./trainer/stage2/schedule.ts";
export {
  deriveRequestSeed,
  deriveRolloutSeedBase,
} from "./trainer/rollout/seed.ts";
export {
  bboxL1GiouLoss,
  type BboxLosses,
  expectationDecode,
} from "./trainer/stage2/geometry.ts";
export { extractGtBboxOnly, type GtRecordLike } from "./trainer/stage2/gt.ts";
export {
  type DropCounts,
  type ParsedPrediction,
  type ParsedRollout,
  parseRolloutForMatching,
  type RolloutTokenizer,
} from "./trainer/rollout/parse.ts";
export {
  hungarianMatch,
  type MatchOptions,
  type MatchPair,
  type MatchResult,
} from "./trainer/rollout/match.ts";
export { serializeAppendFragment } from "./trainer/rollout/fn_append.ts";
export {
  type EmbedFn,
  expectedCoordEmbeddings,
  type SoftContextArgs,
  softContextEmbeddings,
} from "./trainer/stage2/softctx.ts";
export {
  buildStage2Batch,
  type CollateOptions,
  type RolloutResult,
  type Stage2Batch,
  type Stage2Sequence,
  type SupervisedBox,
} from "./trainer/stage2/batch.ts";
export {
  stage2Loss,
  type Stage2LossOptions,
  type Stage2LossTerms,
} from "./trainer/stage2/loss.ts";
export {
  type ApResult,
  cocoAp,
  type EvalBox,
  type ImageDetections,
  type ScoredBox,
} from "./trainer/eval/ap.ts";
export {
  type DetectionMetrics,
  detectionMetrics,
} from "./trainer/eval/metrics.ts";
export { type AuditReport, auditRun } from "./audit/trace/mod.ts";
export { synthSampleAt } from "./trainer/data/synth.ts";
export {
  type AblationOptions,
  type AblationResult,
  runAblation,
} from "./trainer/ablate/run.ts";
