/**
 * COCO AP on hand-made cases. Every expected value is worked out by hand in
 * the comments (and was cross-checked once with pycocotools 2.0.11's
 * COCOeval, bbox, on the same boxes in xywh).
 */
import assert from "node:assert/strict";
import type { Xyxy } from "../../../trainer/coord/pixels.ts";
import {
  COCO_IOU_THRESHOLDS,
  cocoAp,
  type ImageDetections,
  interpolatedAp,
} from "../../../trainer/eval/ap.ts";

const close = (a: number | null, b: number, what = "") =>
  assert.ok(
    a !== null && Math.abs(a - b) < 1e-12,
    `${what}: got ${a}, want ${b}`,
  );
const gt = (bbox: Xyxy, desc = "a") => ({ desc, bbox });
const det = (bbox: Xyxy, score: number, desc = "a") => ({ desc, bbox, score });

const G1: Xyxy = [0, 0, 100, 100],
  G2: Xyxy = [200, 0, 300, 100],
  G3: Xyxy = [400, 0, 500, 100],
  G4: Xyxy = [0, 200, 100, 300],
  FAR: Xyxy = [800, 800, 900, 900];

Deno.test("COCO 101-point AP: a ranked TP/FP list with a duplicate, over two images", () => {
  // image 1: GT g1 g2 g3; image 2: GT g4. Detections by score:
  //   0.9 g1 (TP), 0.8 nowhere (FP), 0.7 g2 (TP), 0.6 g4 (TP, image 2),
  //   0.5 g1 again (duplicate: g1 is taken -> FP).
  // recall    .25 .25 .50 .75 .75
  // precision 1   .5  2/3 .75 .6  -> envelope 1 .75 .75 .75 .6
  // recall points 0..0.25 (26 of them) read 1, 0.26..0.50 (25) read .75,
  // 0.51..0.75 (25) read .75, 0.76..1 (25) read 0 (recall never gets there):
  // AP = (26 + 25*.75 + 25*.75) / 101 = 63.5 / 101.
  // (VOC's 11-point rule would give 6.75/11 and the all-point area .625.)
  const images: ImageDetections[] = [
    {
      gts: [gt(G1), gt(G2), gt(G3)],
      preds: [det(G1, 0.9), det(FAR, 0.8), det(G2, 0.7), det(G1, 0.5)],
    },
    { gts: [gt(G4)], preds: [det(G4, 0.6)] },
  ];
  const r = cocoAp(images);
  // every match has IoU 1, so every threshold gives the same AP
  for (const v of r.apByIou) close(v, 63.5 / 101, "AP at each IoU");
  close(r.ap, 63.5 / 101, "ap");
  close(r.ap50, 63.5 / 101, "ap50");
  assert.equal(r.categories.length, 1);
  assert.equal(r.categories[0].groundTruth, 4);
  assert.equal(r.categories[0].predictions, 5);
});

Deno.test("COCO AP: IoU thresholds 0.50:0.05:0.95, IoU equal to a threshold counts", () => {
  assert.deepEqual(
    [...COCO_IOU_THRESHOLDS],
    [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
  );
  // IoU of [0,0,100,70] with [0,0,100,100] = 7000 / 10000 = 0.7 exactly:
  // a true positive at 0.50 ... 0.70 (5 thresholds, AP 1 each), a miss above
  // (AP 0): ap = 5/10, ap50 = 1.
  const r = cocoAp([{ gts: [gt(G1)], preds: [det([0, 0, 100, 70], -1)] }]);
  [1, 1, 1, 1, 1, 0, 0, 0, 0, 0].forEach((want, i) =>
    close(r.apByIou[i], want, `AP at ${COCO_IOU_THRESHOLDS[i]}`)
  );
  close(r.ap, 0.5, "ap");
  close(r.ap50, 1, "ap50");
});

Deno.test("COCO AP: empty predictions give 0, empty ground truth gives null (no category)", () => {
  const noPreds = cocoAp([{ gts: [gt(G1), gt(G2, "b")], preds: [] }]);
  close(noPreds.ap, 0, "no predictions");
  close(noPreds.ap50, 0, "no predictions ap50");
  assert.deepEqual(noPreds.categories.map((c) => c.desc), ["a", "b"]);

  const noGt = cocoAp([{ gts: [], preds: [det(G1, -0.1)] }, {
    gts: [],
    preds: [],
  }]);
  assert.equal(noGt.ap, null);
  assert.equal(noGt.ap50, null);
  assert.deepEqual(noGt.categories, []);
  assert.deepEqual(cocoAp([]).categories, []);
});

Deno.test("COCO AP: per-desc categories averaged; a desc without GT does not count", () => {
  // "a": perfect (AP 1). "b": 2 GT, one found: recall .5 at precision 1, so
  // points 0..0.50 (51) read 1 -> 51/101. "c" has no GT: ignored for AP.
  // ap = (1 + 51/101) / 2 = 76/101.
  const r = cocoAp([
    {
      gts: [gt(G1, "a"), gt(G2, "b")],
      preds: [det(G1, -0.2, "a"), det(G2, -0.3, "b"), det(G3, 0, "c")],
    },
    { gts: [gt(G4, "b")], preds: [det(FAR, -5, "c")] },
  ]);
  assert.deepEqual(r.categories.map((c) => [c.desc, c.groundTruth]), [
    ["a", 1],
    ["b", 2],
  ]);
  close(r.categories[0].ap, 1, "a");
  close(r.categories[1].ap, 51 / 101, "b");
  close(r.ap, 76 / 101, "ap");
});

Deno.test("COCO AP: ranking by score, ties broken by image order then rollout order", () => {
  // One GT. FP ranked first: recall 0, 1 / precision 0, .5 -> envelope .5 .5
  // -> every recall point reads .5: AP .5. TP ranked first: AP 1.
  const fpFirst = cocoAp([{
    gts: [gt(G1)],
    preds: [det(FAR, -0.1), det(G1, -2)],
  }]);
  close(fpFirst.ap50, 0.5, "FP scored higher");
  const tpFirst = cocoAp([{
    gts: [gt(G1)],
    preds: [det(FAR, -2), det(G1, -0.1)],
  }]);
  close(tpFirst.ap50, 1, "TP scored higher");
  // equal scores: rollout order decides
  close(
    cocoAp([{ gts: [gt(G1)], preds: [det(FAR, -1), det(G1, -1)] }]).ap50,
    0.5,
    "tie, FP first in the rollout",
  );
  close(
    cocoAp([{ gts: [gt(G1)], preds: [det(G1, -1), det(FAR, -1)] }]).ap50,
    1,
    "tie, TP first in the rollout",
  );
  // equal scores across images: the earlier image ranks first
  close(
    cocoAp([
      { gts: [], preds: [det(FAR, -1)] },
      { gts: [gt(G1)], preds: [det(G1, -1)] },
    ]).ap50,
    0.5,
    "tie across images",
  );
});

Deno.test("COCO AP: greedy matching by score, not Hungarian; duplicates are FPs but AP keeps the first hit", () => {
  // d1 (score .9) has IoU 7000/13000 = .54 with g1 and 8000/12000 = .67
  // with g2 -> takes g2; d2 (score .8) has IoU 9500/10500 = .90 with g2
  // (taken) and 4500/15500 = .29 with g1 -> FP at 0.5. Ranked TP, FP with 2
  // GT: recall .5 .5, precision 1 .5 -> envelope 1 .5; points 0..0.5 read 1:
  // AP50 = 51/101. (A Hungarian matching would pair d1-g1 and d2-g2.)
  const g1: Xyxy = [0, 0, 100, 100], g2: Xyxy = [50, 0, 150, 100];
  const d1: Xyxy = [30, 0, 130, 100];
  const d2: Xyxy = [55, 0, 155, 100];
  const r = cocoAp([{
    gts: [gt(g1), gt(g2)],
    preds: [det(d1, 0.9), det(d2, 0.8)],
  }]);
  close(r.ap50, 51 / 101, "greedy");
  // Over 0.50:0.95: at 0.50..0.65 (4 thresholds) as above, 51/101; at
  // 0.70..0.90 (5) d1 matches nothing and d2 takes g2: ranked FP, TP ->
  // precision .5 up to recall .5: 25.5/101; at 0.95 nothing: 0.
  // ap = (4 * 51 + 5 * 25.5) / 101 / 10 = 331.5 / 1010.
  close(r.ap, 331.5 / 1010, "greedy over 0.50:0.95");

  // a duplicate of a perfect hit ranked second: TP, FP with 1 GT ->
  // precision 1, .5 at recall 1, 1 -> every point reads 1: AP 1.
  const dup = cocoAp([{
    gts: [gt(G1)],
    preds: [det(G1, -0.1), det(G1, -0.2)],
  }]);
  close(dup.ap, 1, "duplicate");
});

Deno.test("COCO AP: at most maxDets detections per image and desc, by score", () => {
  const images = [{
    gts: [gt(G1), gt(G2)],
    preds: [det(G1, -0.5), det(G2, -0.1)],
  }];
  // keep only the best-scored one (G2): recall .5, precision 1 -> 51/101
  close(
    cocoAp(images, { maxDetsPerImage: 1 }).ap50,
    51 / 101,
    "cap",
  );
  close(cocoAp(images).ap50, 1, "no cap");
});

Deno.test("interpolatedAp reads the precision envelope at 101 recall points", () => {
  // 2 GT, ranked FP, TP, TP: recall 0 .5 1, precision 0 .5 2/3 ->
  // envelope 2/3 2/3 2/3: AP = 2/3.
  close(interpolatedAp([false, true, true], 2), 2 / 3, "FP, TP, TP");
  close(interpolatedAp([], 3), 0, "no detections");
  assert.throws(() => interpolatedAp([true], 0), /at least one ground truth/);
});
