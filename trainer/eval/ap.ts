/**
 * COCO-style average precision for box detections, following the
 * definition of pycocotools' `COCOeval` (`evaluateImg` + `accumulate`) for
 * boxes with no crowd annotations, area range "all" and `maxDets` 100:
 *
 * - Categories are the distinct ground-truth `desc` strings (exact string
 *   equality). A prediction only competes for ground truth of its own desc;
 *   predictions whose desc has no ground truth anywhere in the split belong
 *   to no evaluated category and do not change AP (COCO skips categories
 *   without ground truth), but they still count as false positives in
 *   precision / recall / F1.
 * - Per image and category, detections are sorted by descending score
 *   (stable, so ties keep rollout order) and cut to `maxDetsPerImage`; each
 *   one in turn takes the still-unmatched ground truth box with the highest
 *   IoU, provided IoU >= the threshold.
 * - Per category, detections of all images are ranked by score (stable:
 *   ties in image order, then rollout order), precision is made monotone
 *   (the "envelope") and sampled at the 101 recall points 0, 0.01, ..., 1
 *   (the first rank whose recall reaches the point; 0 past the last).
 * - AP of a category at one threshold is the mean of those 101 values; a
 *   category with ground truth but no detections has AP 0.
 * - `ap` averages over the IoU thresholds 0.50, 0.55, ..., 0.95 and over
 *   categories (every evaluated category has a value at every threshold, so
 *   this equals COCO's mean over the whole precision array); `ap50` is the
 *   mean over categories at IoU 0.50.
 *
 * Written here rather than taken from a package: the npm COCO evaluators
 * either need the full COCO JSON/annotation machinery or implement VOC's
 * 11-point rule; this is the 101-point rule in ~100 lines of pure code,
 * tested against hand-computed cases (`tests/trainer/eval/ap_test.ts`).
 */
import type { Xyxy } from "../coord/pixels.ts";
import { boxIou } from "../rollout/match.ts";

/** A ground-truth box. */
export interface EvalBox {
  desc: string;
  bbox: Xyxy;
}

/** A predicted box with its confidence (higher = more confident). */
export interface ScoredBox extends EvalBox {
  score: number;
}

/** One image: ground truth and predictions (in rollout order). */
export interface ImageDetections {
  gts: readonly EvalBox[];
  preds: readonly ScoredBox[];
}

/** COCO's IoU thresholds 0.50:0.05:0.95, written as exact decimals. */
export const COCO_IOU_THRESHOLDS: readonly number[] = Array.from(
  { length: 10 },
  (_, i) => (50 + 5 * i) / 100,
);

/** COCO's 101 recall sample points 0, 0.01, ..., 1. */
const RECALL_POINTS = Array.from({ length: 101 }, (_, i) => i / 100);

/** numpy's `np.spacing(1)`: COCO adds it to precision denominators. */
const SPACING_1 = 2.220446049250313e-16;

export interface CategoryAp {
  desc: string;
  /** Ground-truth boxes of this desc over all images. */
  groundTruth: number;
  /** Predictions of this desc over all images (after the per-image cap). */
  predictions: number;
  /** AP at each threshold of `iouThresholds`. */
  apByIou: number[];
  /** Mean of `apByIou`. */
  ap: number;
}

export interface ApResult {
  iouThresholds: number[];
  /** Categories with ground truth, sorted by desc. */
  categories: CategoryAp[];
  /** Mean over categories and thresholds; null when no category has GT. */
  ap: number | null;
  /** Mean over categories at IoU 0.5; null without categories or 0.5. */
  ap50: number | null;
  /** Mean over categories at each threshold. */
  apByIou: (number | null)[];
}

export interface ApOptions {
  /** Default `COCO_IOU_THRESHOLDS`. */
  iouThresholds?: readonly number[];
  /** Per image and category (COCO `maxDets`, default 100). */
  maxDetsPerImage?: number;
}

/** Area under one category's interpolated precision/recall curve. */
export function interpolatedAp(
  /** Per ranked detection: true positive or not (ranked by score). */
  tp: readonly boolean[],
  groundTruth: number,
): number {
  if (groundTruth <= 0) {
    throw new RangeError("interpolatedAp needs at least one ground truth box");
  }
  const n = tp.length;
  const recall = new Float64Array(n);
  const precision = new Float64Array(n);
  let tps = 0;
  for (let i = 0; i < n; i++) {
    if (tp[i]) tps++;
    recall[i] = tps / groundTruth;
    precision[i] = tps / (i + 1 + SPACING_1);
  }
  for (let i = n - 1; i > 0; i--) {
    if (precision[i] > precision[i - 1]) precision[i - 1] = precision[i];
  }
  let sum = 0;
  let i = 0;
  for (const r of RECALL_POINTS) {
    while (i < n && recall[i] < r) i++; // searchsorted(side="left")
    if (i < n) sum += precision[i];
  }
  return sum / RECALL_POINTS.length;
}

/**
 * COCO-style AP over a split (see the module comment for the exact rules).
 *
 * @example
 * cocoAp([{ gts: [{ desc: "a", bbox: [0, 0, 10, 10] }],
 *           preds: [{ desc: "a", bbox: [0, 0, 10, 10], score: -0.1 }] }]);
 * // -> { ap: 1, ap50: 1, categories: [{ desc: "a", ap: 1, ... }], ... }
 */
export function cocoAp(
  images: readonly ImageDetections[],
  o: ApOptions = {},
): ApResult {
  const thresholds = [...(o.iouThresholds ?? COCO_IOU_THRESHOLDS)];
  const maxDets = o.maxDetsPerImage ?? 100;
  const descs = [...new Set(images.flatMap((im) => im.gts.map((g) => g.desc)))]
    .sort();
  const categories: CategoryAp[] = descs.map((desc) => {
    // Per threshold, the ranked (score, tp) list over all images.
    const ranked: { score: number; tp: boolean[] }[] = [];
    let groundTruth = 0;
    for (const im of images) {
      const gts = im.gts.filter((g) => g.desc === desc);
      groundTruth += gts.length;
      const dets = im.preds
        .filter((p) => p.desc === desc)
        .map((p, k) => ({ p, k }))
        .sort((a, b) => b.p.score - a.p.score || a.k - b.k)
        .slice(0, maxDets)
        .map(({ p }) => p);
      const taken = thresholds.map(() => new Array<boolean>(gts.length));
      for (const d of dets) {
        const ious = gts.map((g) => boxIou(d.bbox, g.bbox));
        ranked.push({
          score: d.score,
          tp: thresholds.map((t, ti) => {
            // COCO: best IoU among unmatched GT, starting at min(t, 1-1e-10);
            // on equal IoU the later GT wins (its `<` comparison).
            let best = Math.min(t, 1 - 1e-10), m = -1;
            for (let g = 0; g < gts.length; g++) {
              if (taken[ti][g] || ious[g] < best) continue;
              best = ious[g];
              m = g;
            }
            if (m < 0) return false;
            taken[ti][m] = true;
            return true;
          }),
        });
      }
    }
    // Stable: Array.prototype.sort is stable, so ties keep image then rollout order.
    ranked.sort((a, b) => b.score - a.score);
    const apByIou = thresholds.map((_, ti) =>
      interpolatedAp(ranked.map((r) => r.tp[ti]), groundTruth)
    );
    return {
      desc,
      groundTruth,
      predictions: ranked.length,
      apByIou,
      ap: mean(apByIou)!,
    };
  });
  const apByIou = thresholds.map((_, ti) =>
    mean(categories.map((c) => c.apByIou[ti]))
  );
  const i50 = thresholds.indexOf(0.5);
  return {
    iouThresholds: thresholds,
    categories,
    ap: mean(categories.map((c) => c.ap)),
    ap50: i50 < 0 ? null : apByIou[i50],
    apByIou,
  };
}

function mean(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}
