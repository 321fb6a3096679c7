/**
 * Detection metrics of a split at one IoU threshold, as pure functions of
 * the ground truth and the (scored) predictions of each image.
 *
 * Matching for precision / recall / F1 is one-to-one and optimal: per image
 * and desc, the Hungarian matcher used by Channel B (`hungarianMatch`, cost
 * `1 - IoU`) with the gate at the threshold and every GT of that desc as a
 * candidate, so it maximises the number of matches and then their IoU. A
 * true positive needs the same desc (exact string) and IoU >= threshold.
 * The class-agnostic variant ignores desc, which separates "found the
 * object" from "named it right" (`desc_accuracy`).
 *
 * Ratios are null where they are undefined: precision without predictions,
 * recall without ground truth, F1 = 2TP / (predictions + GT) without either.
 */
import { hungarianMatch, type MatchPair } from "../rollout/match.ts";
import { cocoAp, type EvalBox, type ImageDetections } from "./ap.ts";

/** Counts and ratios at one IoU threshold. */
export interface DetectionCounts {
  predictions: number;
  ground_truth: number;
  true_positives: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  /** Mean IoU of the matched pairs; null when nothing matched. */
  mean_iou: number | null;
}

/** One row of the per-desc table. */
export interface DescRow extends DetectionCounts {
  desc: string;
  /** COCO AP of this desc (0.5:0.95) and at IoU 0.5; null without GT. */
  ap: number | null;
  ap50: number | null;
}

export interface DetectionMetrics extends DetectionCounts {
  iou_threshold: number;
  /** COCO-style AP over IoU 0.50:0.05:0.95 and GT descs; null without GT. */
  ap: number | null;
  ap50: number | null;
  /** Mean AP over descs at each COCO threshold ("0.50" ... "0.95"). */
  ap_by_iou: Record<string, number | null>;
  /** Matching that ignores desc, and how often its pairs agree on desc. */
  class_agnostic: DetectionCounts & { desc_accuracy: number | null };
  /** Every desc seen in GT or predictions: most GT first, then by name. */
  per_desc: DescRow[];
  /** Predictions whose desc has no ground truth anywhere in the split. */
  predictions_unknown_desc: number;
}

/** Optimal one-to-one matches of one image (pred/gt index into its lists). */
export function matchImage(
  im: ImageDetections,
  iouThreshold: number,
  descAware = true,
): MatchPair[] {
  const groups = descAware ? [...new Set(im.gts.map((g) => g.desc))] : [null];
  const pairs: MatchPair[] = [];
  for (const desc of groups) {
    const pi = indicesOf(im.preds, desc), gi = indicesOf(im.gts, desc);
    if (pi.length === 0 || gi.length === 0) continue;
    const m = hungarianMatch(
      pi.map((i) => im.preds[i].bbox),
      gi.map((j) => im.gts[j].bbox),
      {
        candidateTopK: gi.length,
        iouGate: iouThreshold,
        fpCost: 1,
        fnCost: 1,
      },
    );
    for (const p of m.pairs) {
      pairs.push({ pred: pi[p.pred], gt: gi[p.gt], iou: p.iou });
    }
  }
  return pairs.sort((a, b) => a.pred - b.pred);
}

function indicesOf(boxes: readonly EvalBox[], desc: string | null): number[] {
  const out: number[] = [];
  boxes.forEach((b, i) => {
    if (desc === null || b.desc === desc) out.push(i);
  });
  return out;
}

/** Ratios from counts and the IoUs of the matched pairs. */
export function countsFrom(
  predictions: number,
  groundTruth: number,
  ious: readonly number[],
): DetectionCounts {
  const tp = ious.length;
  return {
    predictions,
    ground_truth: groundTruth,
    true_positives: tp,
    precision: predictions ? tp / predictions : null,
    recall: groundTruth ? tp / groundTruth : null,
    f1: predictions + groundTruth
      ? (2 * tp) / (predictions + groundTruth)
      : null,
    mean_iou: tp ? ious.reduce((a, b) => a + b, 0) / tp : null,
  };
}

/**
 * Precision / recall / F1 / mean IoU at `iouThreshold` (desc-aware and
 * class-agnostic), COCO AP, and the per-desc table.
 *
 * @example
 * const m = detectionMetrics([{ gts: [{ desc: "a", bbox: [0, 0, 9, 9] }],
 *   preds: [{ desc: "a", bbox: [0, 0, 9, 9], score: -0.2 }] }]);
 * m.f1; // 1
 */
export function detectionMetrics(
  images: readonly ImageDetections[],
  iouThreshold = 0.5,
  matches: readonly MatchPair[][] = images.map((im) =>
    matchImage(im, iouThreshold)
  ),
): DetectionMetrics {
  const nPred = images.reduce((n, im) => n + im.preds.length, 0);
  const nGt = images.reduce((n, im) => n + im.gts.length, 0);
  const overall = countsFrom(nPred, nGt, matches.flat().map((p) => p.iou));

  const agnostic = images.map((im) => matchImage(im, iouThreshold, false));
  const agnosticPairs = agnostic.flatMap((ps, i) =>
    ps.map((p) => ({ ...p, im: images[i] }))
  );
  const descOk =
    agnosticPairs.filter((p) => p.im.preds[p.pred].desc === p.im.gts[p.gt].desc)
      .length;

  const ap = cocoAp(images);
  const apOf = new Map(ap.categories.map((c) => [c.desc, c]));
  const gtDescs = new Set(apOf.keys());
  const descs = new Map<string, { pred: number; gt: number; ious: number[] }>();
  const row = (d: string) => {
    let r = descs.get(d);
    if (!r) descs.set(d, r = { pred: 0, gt: 0, ious: [] });
    return r;
  };
  images.forEach((im, i) => {
    for (const p of im.preds) row(p.desc).pred++;
    for (const g of im.gts) row(g.desc).gt++;
    for (const p of matches[i]) row(im.gts[p.gt].desc).ious.push(p.iou);
  });
  const per_desc: DescRow[] = [...descs]
    .sort(([a, x], [b, y]) => y.gt - x.gt || (a < b ? -1 : a > b ? 1 : 0))
    .map(([desc, r]) => ({
      desc,
      ...countsFrom(r.pred, r.gt, r.ious),
      ap: apOf.get(desc)?.ap ?? null,
      ap50: apOf.get(desc)?.apByIou[ap.iouThresholds.indexOf(0.5)] ?? null,
    }));
  return {
    iou_threshold: iouThreshold,
    ...overall,
    ap: ap.ap,
    ap50: ap.ap50,
    ap_by_iou: Object.fromEntries(
      ap.iouThresholds.map((t, i) => [t.toFixed(2), ap.apByIou[i]]),
    ),
    class_agnostic: {
      ...countsFrom(nPred, nGt, agnosticPairs.map((p) => p.iou)),
      desc_accuracy: agnosticPairs.length
        ? descOk / agnosticPairs.length
        : null,
    },
    per_desc,
    predictions_unknown_desc: images.reduce(
      (n, im) => n + im.preds.filter((p) => !gtDescs.has(p.desc)).length,
      0,
    ),
  };
}
