/** Precision / recall / F1 / mean IoU and the per-desc table on hand-made cases. */
import assert from "node:assert/strict";
import type { Xyxy } from "../../../trainer/coord/pixels.ts";
import { detectionMetrics, matchImage } from "../../../trainer/eval/metrics.ts";

const close = (a: number | null, b: number, what = "") =>
  assert.ok(
    a !== null && Math.abs(a - b) < 1e-12,
    `${what}: got ${a}, want ${b}`,
  );
const gt = (bbox: Xyxy, desc = "a") => ({ desc, bbox });
const det = (bbox: Xyxy, desc = "a", score = -1) => ({ desc, bbox, score });

const A: Xyxy = [0, 0, 100, 100], B: Xyxy = [200, 0, 300, 100];

Deno.test("F1@0.5: duplicates are false positives; mean IoU over matched pairs only", () => {
  // GT A, B. Predictions: A exactly (IoU 1), A again (duplicate -> FP),
  // [200,0,300,80] on B (IoU 8000/10000 = .8).
  // TP 2, FP 1, FN 0: P 2/3, R 1, F1 = 2*2/(3+2) = .8, mean IoU .9.
  const m = detectionMetrics([{
    gts: [gt(A), gt(B)],
    preds: [det(A), det(A), det([200, 0, 300, 80])],
  }]);
  assert.equal(m.true_positives, 2);
  close(m.precision, 2 / 3, "precision");
  close(m.recall, 1, "recall");
  close(m.f1, 0.8, "f1");
  close(m.mean_iou, 0.9, "mean IoU");
});

Deno.test("F1@0.5: a box needs the right desc; the class-agnostic view counts it", () => {
  // GT "red" at A; prediction "blue" at A: desc-aware TP 0 (P 0, R 0, F1 0);
  // class-agnostic TP 1 with desc accuracy 0.
  const m = detectionMetrics([{
    gts: [gt(A, "red")],
    preds: [det(A, "blue")],
  }]);
  assert.equal(m.true_positives, 0);
  close(m.f1, 0, "desc-aware f1");
  assert.equal(m.mean_iou, null);
  assert.equal(m.class_agnostic.true_positives, 1);
  close(m.class_agnostic.f1, 1, "agnostic f1");
  close(m.class_agnostic.desc_accuracy, 0, "desc accuracy");
  assert.equal(m.predictions_unknown_desc, 1);
  // "blue" has no GT: its row has no recall and no AP; "red" has AP 0
  const rows = Object.fromEntries(m.per_desc.map((r) => [r.desc, r]));
  assert.equal(rows.blue.recall, null);
  assert.equal(rows.blue.ap, null);
  close(rows.blue.precision, 0, "blue precision");
  close(rows.red.ap, 0, "red AP");
  close(m.ap, 0, "ap");
});

Deno.test("F1@0.5: empty predictions and empty ground truth", () => {
  // no predictions: precision undefined (null), recall 0, F1 0
  const none = detectionMetrics([{ gts: [gt(A), gt(B)], preds: [] }]);
  assert.equal(none.precision, null);
  close(none.recall, 0, "recall");
  close(none.f1, 0, "f1");
  close(none.ap, 0, "ap");
  // no ground truth: recall undefined, precision 0, F1 0, AP undefined
  const noGt = detectionMetrics([{ gts: [], preds: [det(A)] }]);
  close(noGt.precision, 0, "precision");
  assert.equal(noGt.recall, null);
  close(noGt.f1, 0, "f1");
  assert.equal(noGt.ap, null);
  // nothing at all: every ratio undefined
  const empty = detectionMetrics([{ gts: [], preds: [] }]);
  assert.deepEqual(
    [empty.precision, empty.recall, empty.f1, empty.mean_iou, empty.ap],
    [null, null, null, null, null],
  );
  assert.deepEqual(empty.per_desc, []);
});

Deno.test("F1@0.5: one-to-one matching is optimal (Hungarian), IoU 0.5 counts", () => {
  // g1 = [0,0,100,100], g2 = [50,0,150,100]; d1 = [30,0,130,100] overlaps
  // both (IoU 7000/13000 with g1, 8000/12000 with g2), d2 = [55,0,155,100]
  // only g2 (IoU 9500/10500). Greedy-by-IoU would give d1-g2 and leave d2
  // unmatched; the optimal matching pairs d1-g1 and d2-g2: TP 2.
  const g1: Xyxy = [0, 0, 100, 100], g2: Xyxy = [50, 0, 150, 100];
  const im = {
    gts: [gt(g1), gt(g2)],
    preds: [det([30, 0, 130, 100]), det([55, 0, 155, 100])],
  };
  assert.deepEqual(
    matchImage(im, 0.5).map((p) => [p.pred, p.gt]),
    [[0, 0], [1, 1]],
  );
  // IoU exactly 0.5 ([0,0,100,50] in [0,0,100,100]) is a match
  const half = detectionMetrics([{
    gts: [gt(A)],
    preds: [det([0, 0, 100, 50])],
  }]);
  assert.equal(half.true_positives, 1);
  close(half.mean_iou, 0.5, "IoU .5");
  const below = detectionMetrics([{
    gts: [gt(A)],
    preds: [det([0, 0, 100, 49])],
  }]);
  assert.equal(below.true_positives, 0);
});

Deno.test("per-desc table: counts per desc, sorted by GT count then name", () => {
  const m = detectionMetrics([
    { gts: [gt(A, "b"), gt(B, "a")], preds: [det(A, "b"), det(B, "c")] },
    { gts: [gt(A, "b")], preds: [] },
  ]);
  assert.deepEqual(
    m.per_desc.map((
      r,
    ) => [r.desc, r.ground_truth, r.predictions, r.true_positives]),
    [["b", 2, 1, 1], ["a", 1, 0, 0], ["c", 0, 1, 0]],
  );
  // "b": 2 GT, one hit at rank 1 -> AP 51/101 at every threshold; "a": 0.
  close(m.per_desc[0].ap, 51 / 101, "b");
  close(m.ap, (51 / 101 + 0) / 2, "ap");
  assert.deepEqual(Object.keys(m.ap_by_iou), [
    "0.50",
    "0.55",
    "0.60",
    "0.65",
    "0.70",
    "0.75",
    "0.80",
    "0.85",
    "0.90",
    "0.95",
  ]);
});
