/**
 * What one evaluated image leaves behind (a line of `eval_samples.jsonl`)
 * and the evaluation's fixed conventions. No TF.js here: the report reads
 * these without loading the model code.
 */
import type { Xyxy } from "../coord/pixels.ts";
import type { DropCounts, ParsedRollout } from "../rollout/parse.ts";

/** IoU threshold of a true positive in P/R/F1 (AP also sweeps 0.5:0.95). */
export const EVAL_IOU = 0.5;

/** How a predicted box is scored for AP (also written into the summary). */
export const BOX_SCORE_RULE =
  "mean log-probability of the box's 4 coord tokens under the model (greedy rollout); ties ranked by image order, then rollout order";

/** One evaluated image (one line of `eval_samples.jsonl`). */
export interface EvalSampleRecord {
  /** Position of the record in the evaluated JSONL. */
  index: number;
  /** `file:line` of the record. */
  source: string;
  image: string;
  width: number;
  height: number;
  /** The answer is one complete, closed JSON object. */
  parsed: boolean;
  /** No top-level `{` at all. */
  invalid: boolean;
  stop: ParsedRollout["stop"];
  /** Generation hit `max_new_tokens` before the end-of-turn token. */
  truncated: boolean;
  drops: DropCounts;
  /** Generated tokens (end-of-turn included when produced). */
  new_tokens: number;
  gts: { desc: string; bbox_2d: Xyxy }[];
  /** Valid predictions in rollout order; `score` per `BOX_SCORE_RULE`. */
  preds: { desc: string; bbox_2d: Xyxy; score: number }[];
  /** Desc-aware one-to-one matches at IoU >= 0.5 (indices into preds/gts). */
  matches: { pred: number; gt: number; iou: number }[];
  /** The decoded answer, cut at the end-of-turn token. */
  text: string;
}

export interface RolloutRun {
  records: EvalSampleRecord[];
  /** Tokens generated over all images. */
  generatedTokens: number;
  /** Wall seconds spent inside generation. */
  generateSeconds: number;
}
