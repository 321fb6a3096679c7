/**
 * Deterministic gated top-k Hungarian matching of predicted boxes to ground
 * truth. The assignment itself is solved by the npm `linear-sum-assignment`
 * package (Jonker-Volgenant shortest augmenting path): it has no randomness,
 * scans rows and columns in a fixed order and breaks ties with strict `<`, so
 * equal inputs always give equal matchings. Which of two equal-cost
 * predictions wins is the solver's fixed choice, not necessarily the lower
 * index.
 */
import { linearSumAssignment } from "linear-sum-assignment";
import type { Xyxy } from "../coord/pixels.ts";

export interface MatchOptions {
  /** Each prediction considers only its top-k GT candidates (k >= 1). */
  candidateTopK: number;
  /** Pairs with IoU below this gate are forbidden (`maskiou_gate`). */
  iouGate: number;
  /** Cost of leaving a prediction unmatched (false positive). */
  fpCost: number;
  /** Cost of leaving a GT object unmatched (false negative). */
  fnCost: number;
}

export interface MatchPair {
  pred: number;
  gt: number;
  iou: number;
}

export interface MatchResult {
  /** Matched pairs sorted by prediction index. */
  pairs: MatchPair[];
  unmatchedPreds: number[];
  unmatchedGts: number[];
  /** Top-k candidate pairs that the IoU gate forbade. */
  gateRejections: number;
  /** IoU of each pair, in `pairs` order. */
  ious: number[];
}

/** IoU of two xyxy boxes (any consistent unit; degenerate boxes give 0). */
export function boxIou(a: Xyxy, b: Xyxy): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) -
    inter;
  return union > 0 ? inter / union : 0;
}

function centreDistance(a: Xyxy, b: Xyxy): number {
  return Math.hypot(
    (a[0] + a[2]) / 2 - (b[0] + b[2]) / 2,
    (a[1] + a[3]) / 2 - (b[1] + b[3]) / 2,
  );
}

function checkOptions(o: MatchOptions): void {
  if (!Number.isInteger(o.candidateTopK) || o.candidateTopK < 1) {
    throw new RangeError(
      `rollout_matching.candidate_top_k must be an integer >= 1, got ${o.candidateTopK}`,
    );
  }
  if (!(o.iouGate >= 0 && o.iouGate <= 1)) {
    throw new RangeError(
      `rollout_matching.maskiou_gate must be in [0, 1], got ${o.iouGate}`,
    );
  }
  for (const [k, v] of [["fp_cost", o.fpCost], ["fn_cost", o.fnCost]]) {
    if (!Number.isFinite(v as number) || (v as number) < 0) {
      throw new RangeError(`rollout_matching.${k} must be >= 0, got ${v}`);
    }
  }
}

/**
 * Matches predictions to GT boxes with cost `1 - IoU`. Each prediction only
 * considers its `candidateTopK` GT candidates ranked by IoU (by centre
 * distance when none overlaps; ties by GT index), candidates under the IoU
 * gate are forbidden, and the square cost matrix is padded with one
 * false-positive dummy per prediction (`fpCost`) and one false-negative dummy
 * per GT (`fnCost`), so leaving anything unmatched is always legal.
 *
 * @example
 * hungarianMatch([[0, 0, 10, 10]], [[0, 0, 10, 12], [50, 50, 60, 60]],
 *   { candidateTopK: 2, iouGate: 0.3, fpCost: 1, fnCost: 1 });
 * // -> pairs [{ pred: 0, gt: 0, iou: 0.833 }], unmatchedGts [1]
 */
export function hungarianMatch(
  preds: readonly Xyxy[],
  gts: readonly Xyxy[],
  options: MatchOptions,
): MatchResult {
  checkOptions(options);
  const P = preds.length;
  const G = gts.length;
  const iou = preds.map((p) => gts.map((g) => boxIou(p, g)));
  // allowed[i][j]: candidate within top-k and at or above the gate.
  const allowed = preds.map(() => new Array<boolean>(G).fill(false));
  let gateRejections = 0;
  for (let i = 0; i < P; i++) {
    const anyOverlap = iou[i].some((v) => v > 0);
    const order = gts.map((_, j) => j).sort((a, b) => {
      const d = anyOverlap
        ? iou[i][b] - iou[i][a]
        : centreDistance(preds[i], gts[a]) - centreDistance(preds[i], gts[b]);
      return d !== 0 ? d : a - b;
    });
    for (const j of order.slice(0, options.candidateTopK)) {
      if (iou[i][j] >= options.iouGate) allowed[i][j] = true;
      else gateRejections++;
    }
  }
  const pairs: MatchPair[] = [];
  if (P > 0 && G > 0 && allowed.some((r) => r.some((a) => a))) {
    // Forbidden entries get a finite cost larger than any legal total, so the
    // solver never needs infinities and a forbidden pick is detectable.
    const forbidden = 1e6 * (1 + options.fpCost + options.fnCost);
    const n = P + G;
    // rows: P predictions, then G FN dummies; columns: G GTs, then P FP dummies
    const cost = Array.from({ length: n }, () => new Array(n).fill(forbidden));
    for (let i = 0; i < P; i++) {
      for (let j = 0; j < G; j++) if (allowed[i][j]) cost[i][j] = 1 - iou[i][j];
      cost[i][G + i] = options.fpCost;
    }
    for (let j = 0; j < G; j++) {
      cost[P + j][j] = options.fnCost;
      for (let i = 0; i < P; i++) cost[P + j][G + i] = 0;
    }
    const { rowAssignments } = linearSumAssignment(cost, { maximaze: false });
    for (let i = 0; i < P; i++) {
      const j = rowAssignments[i];
      if (j < 0 || cost[i][j] >= forbidden) {
        throw new Error(
          `assignment solver returned an illegal pair (pred ${i}, column ${j})`,
        );
      }
      if (j < G) pairs.push({ pred: i, gt: j, iou: iou[i][j] });
    }
  }
  const matchedP = new Set(pairs.map((p) => p.pred));
  const matchedG = new Set(pairs.map((p) => p.gt));
  return {
    pairs,
    unmatchedPreds: preds.map((_, i) => i).filter((i) => !matchedP.has(i)),
    unmatchedGts: gts.map((_, j) => j).filter((j) => !matchedG.has(j)),
    gateRejections,
    ious: pairs.map((p) => p.iou),
  };
}
