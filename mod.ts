/**
 * `stage2` library entry: the pieces of the CoordExp Stage-2 AB method,
 * usable without the trainer. Coordinates are coord-token bins 0..999 with
 * `c = k / 999` everywhere.
 *
 * @example
 * import { channelForStep, deriveRolloutSeedBase } from "./mod.ts";
 * channelForStep(["A", "A", "B"], 2); // "B"
 * deriveRolloutSeedBase(17, 2);       // 2000023
 *
 * @module
 */
import * as codec from "./trainer/coord/codec.ts";
import * as schedule from "./trainer/stage2/schedule.ts";
import * as seed from "./trainer/rollout/seed.ts";
import * as geometry from "./trainer/stage2/geometry.ts";
import * as gt from "./trainer/stage2/gt.ts";
import * as parse from "./trainer/rollout/parse.ts";
import * as match from "./trainer/rollout/match.ts";
import * as fnAppend from "./trainer/rollout/fn_append.ts";
import * as softctx from "./trainer/stage2/softctx.ts";
import * as batch from "./trainer/stage2/batch.ts";
import * as loss from "./trainer/stage2/loss.ts";
import * as audit from "./audit/trace/mod.ts";
import * as ap from "./trainer/eval/ap.ts";
import * as evalMetrics from "./trainer/eval/metrics.ts";

export type { Xyxy } from "./trainer/coord/pixels.ts";
export type { AuditReport } from "./audit/trace/mod.ts";
export type { GtObject } from "./trainer/data/types.ts";
export type {
  Channel,
  RolloutBufferOptions,
  StepPlan,
} from "./trainer/stage2/schedule.ts";
export type { BboxLosses } from "./trainer/stage2/geometry.ts";
export type { GtRecordLike } from "./trainer/stage2/gt.ts";
export type {
  DropCounts,
  ParsedPrediction,
  ParsedRollout,
  RolloutTokenizer,
} from "./trainer/rollout/parse.ts";
export type {
  MatchOptions,
  MatchPair,
  MatchResult,
} from "./trainer/rollout/match.ts";
export type {
  ApResult,
  EvalBox,
  ImageDetections,
  ScoredBox,
} from "./trainer/eval/ap.ts";
export type { DetectionMetrics } from "./trainer/eval/metrics.ts";
export type { EmbedFn, SoftContextArgs } from "./trainer/stage2/softctx.ts";
export type {
  CollateOptions,
  RolloutResult,
  Stage2Batch,
  Stage2Sequence,
  SupervisedBox,
} from "./trainer/stage2/batch.ts";
export type {
  Stage2LossOptions,
  Stage2LossTerms,
} from "./trainer/stage2/loss.ts";

/**
 * Normalized coordinate in [0, 1] -> bin `clamp(round(999 * c), 0, 999)`.
 *
 * @example
 * encodeCoord(1);   // 999
 * encodeCoord(0.5); // 500
 */
export const encodeCoord: (c: number) => number = codec.encodeCoord;

/**
 * Bin 0..999 -> normalized coordinate `k / 999` (bin 999 is exactly 1.0).
 *
 * @example
 * decodeCoord(999); // 1
 */
export const decodeCoord: (k: number) => number = codec.decodeCoord;

/**
 * Bin -> its vocabulary token `<|coord_k|>`.
 *
 * @example
 * coordToken(42); // "<|coord_42|>"
 */
export const coordToken: (k: number) => string = codec.coordToken;

/**
 * `<|coord_k|>` -> k, or `undefined` for any other string.
 *
 * @example
 * parseCoordToken("<|coord_7|>"); // 7
 * parseCoordToken("<|coord_1000|>"); // undefined
 */
export const parseCoordToken: (s: string) => number | undefined =
  codec.parseCoordToken;

/**
 * Channel of optimizer step `globalStep`: `pattern[globalStep % pattern.length]`.
 *
 * @example
 * channelForStep(["A", "A", "B"], 5); // "B"
 */
export const channelForStep: (
  pattern: readonly schedule.Channel[],
  globalStep: number,
) => schedule.Channel = schedule.channelForStep;

/**
 * Per-window plan with rollout-buffer reuse (reuse steps are Channel B;
 * no reuse on a partial final window).
 *
 * @example
 * planStep({ pattern: ["B", "A"], globalStep: 1, windowSize: 2,
 *   isPartialWindow: false, rolloutBuffer: { enabled: true, mSteps: 2 } });
 * // -> { channel: "B", bufferReuse: true, freshRollouts: false, ... }
 */
export const planStep: typeof schedule.planStep = schedule.planStep;

/**
 * `(trainingSeed + globalStep * 1000003) & 0x7FFFFFFF`, exact (BigInt) for
 * any step, like Python.
 *
 * @example
 * deriveRolloutSeedBase(42, 3); // 3000051
 */
export const deriveRolloutSeedBase: (
  trainingSeed: number | bigint,
  globalStep: number | bigint,
) => number = seed.deriveRolloutSeedBase;

/**
 * Seed of rollout request `i` of a step: `(seedBase + i) & 0x7FFFFFFF`.
 *
 * @example
 * deriveRequestSeed(3000051, 2); // 3000053
 */
export const deriveRequestSeed: (
  seedBase: number,
  requestIndex: number,
) => number = seed.deriveRequestSeed;

/**
 * Expectation decode of coord logits `[..., 1000]`:
 * `sum_k softmax(z / T)_k * k / 999` (never argmax). Returns `[...]`.
 *
 * @example
 * const c = expectationDecode(tf.zeros([4, 1000])); // [0.5, 0.5, 0.5, 0.5]
 */
export const expectationDecode: typeof geometry.expectationDecode =
  geometry.expectationDecode;

/**
 * L1 (mean over coordinates) and mean `1 - GIoU` between `[N, 4]` xyxy
 * boxes in [0, 1]; the prediction is canonicalized and clipped; NaN-free.
 *
 * @example
 * const { l1, giou } = bboxL1GiouLoss(
 *   tf.tensor2d([[0.1, 0.1, 0.5, 0.5]]), tf.tensor2d([[0.1, 0.1, 0.5, 0.6]]));
 */
export const bboxL1GiouLoss: typeof geometry.bboxL1GiouLoss =
  geometry.bboxL1GiouLoss;

/**
 * Bbox-only v1 ground truth: validated `{desc, bbox_2d}` objects, or an
 * Error naming record and object (polygons must be filtered upstream).
 *
 * @example
 * extractGtBboxOnly({ source: "a.jsonl:1",
 *   objects: [{ desc: "cat", bbox_2d: [1, 2, 30, 40] }] });
 */
export const extractGtBboxOnly: typeof gt.extractGtBboxOnly =
  gt.extractGtBboxOnly;

/**
 * Strict token-aligned parse of a generated response: predictions with
 * their coord-token positions, drop counters, and the append-ready prefix
 * (`{` for an invalid rollout).
 *
 * @example
 * const r = parseRolloutForMatching(tokenizer, generatedIds);
 * r.predictions.map((p) => p.bbox); r.prefixText; r.drops.poly;
 */
export const parseRolloutForMatching: typeof parse.parseRolloutForMatching =
  parse.parseRolloutForMatching;

/**
 * Deterministic gated top-k Hungarian matching (cost `1 - IoU`, fp/fn
 * dummies make "unmatched" legal).
 *
 * @example
 * hungarianMatch([[0, 0, 10, 10]], [[0, 0, 10, 12]],
 *   { candidateTopK: 5, iouGate: 0.3, fpCost: 1, fnCost: 1 }).pairs;
 * // [{ pred: 0, gt: 0, iou: 0.833... }]
 */
export const hungarianMatch: typeof match.hungarianMatch = match.hungarianMatch;

/**
 * FN-append text: missed GT objects as `"object_n": {...}` entries after
 * `prefixText`, closed with `}` (end-of-turn is added as a token).
 *
 * @example
 * serializeAppendFragment([{ desc: "cat", bbox_2d: [1, 2, 3, 4] }], 1, "{");
 * // '"object_1": {"desc": "cat", "bbox_2d": ["<|coord_1|>", ...]}}'
 */
export const serializeAppendFragment: typeof fnAppend.serializeAppendFragment =
  fnAppend.serializeAppendFragment;

/**
 * Channel-A pass embeddings: fresh `embedTokens(ids)` with only coord-slot
 * rows replaced by `softmax(z[p-1, coord]/T) @ E(coord)` (detached).
 *
 * @example
 * const embeds = softContextEmbeddings({ embedTokens: (x) => model.embedTokens(x),
 *   inputIds, coordSlots, coordTokenIds: tokenizer.coordIds, prevLogits });
 */
export const softContextEmbeddings: typeof softctx.softContextEmbeddings =
  softctx.softContextEmbeddings;

/**
 * Shifted expected coord embeddings `[B, T, H]` of a pass's logits (row p
 * from logits at p-1), for reuse across a no-grad/grad pass boundary.
 *
 * @example
 * const soft = expectedCoordEmbeddings((x) => model.embedTokens(x), logits,
 *   tokenizer.coordIds, 1);
 */
export const expectedCoordEmbeddings: typeof softctx.expectedCoordEmbeddings =
  softctx.expectedCoordEmbeddings;

/**
 * Collated Stage-2 micro-batch (Channel A from GT answers, Channel B from
 * rollout prefix + FN append) with CE weights, supervised boxes and 4-row
 * position ids.
 *
 * @example
 * const b = buildStage2Batch({ channel: "B", tokenizer, samples, rollouts,
 *   rope, packing: { enabled: true, maxLength: 2048 },
 *   padId: tokenizer.specialIds.pad, descCeWeight: 1 });
 */
export const buildStage2Batch: typeof batch.buildStage2Batch =
  batch.buildStage2Batch;

/**
 * The hybrid loss on final-pass logits: CE + w1 * L1 + w2 * (1 - GIoU).
 *
 * @example
 * const { total, ce, l1, giou } = stage2Loss(logits, batch,
 *   { coordTokenIds: tokenizer.coordIds, bboxL1Weight: 1, bboxGiouWeight: 1 });
 */
export const stage2Loss: typeof loss.stage2Loss = loss.stage2Loss;

/**
 * Audits a run folder's `trace.jsonl` (what `stage2 audit --run DIR` prints):
 * every training forward and optimizer step re-checked against the method's
 * invariants. `report.ok` is false when any invariant has violations.
 *
 * @example
 * const report = await auditRun("runs/quickstart");
 * for (const inv of report.invariants) console.log(inv.name, inv.violations);
 */
export const auditRun: typeof audit.auditRun = audit.auditRun;

/**
 * COCO-style AP (101-point interpolation, IoU 0.50:0.05:0.95 and 0.50) of
 * scored box predictions; categories are the ground-truth desc strings.
 *
 * @example
 * cocoAp([{ gts: [{ desc: "cat", bbox: [0, 0, 10, 10] }],
 *   preds: [{ desc: "cat", bbox: [0, 0, 10, 10], score: -0.1 }] }]).ap; // 1
 */
export const cocoAp: typeof ap.cocoAp = ap.cocoAp;

/**
 * Desc-aware precision / recall / F1 / mean IoU at one IoU threshold, COCO
 * AP and the per-desc table of a split (what `stage2 eval` reports).
 *
 * @example
 * detectionMetrics([{ gts: [{ desc: "cat", bbox: [0, 0, 10, 10] }],
 *   preds: [{ desc: "cat", bbox: [0, 0, 10, 9], score: -0.2 }] }]).f1; // 1
 */
export const detectionMetrics: typeof evalMetrics.detectionMetrics =
  evalMetrics.detectionMetrics;
