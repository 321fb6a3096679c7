import assert from "node:assert/strict";
import {
  boxIou,
  hungarianMatch,
  type MatchOptions,
} from "../../../trainer/rollout/match.ts";
import type { Xyxy } from "../../../trainer/coord/pixels.ts";

const opts: MatchOptions = {
  candidateTopK: 3,
  iouGate: 0.3,
  fpCost: 1,
  fnCost: 1,
};

Deno.test("matches overlapping boxes and reports unmatched ones", () => {
  const preds: Xyxy[] = [[100, 100, 200, 200], [500, 500, 600, 600], [
    0,
    900,
    10,
    999,
  ]];
  const gts: Xyxy[] = [[510, 500, 610, 600], [100, 110, 200, 200], [
    800,
    0,
    900,
    90,
  ]];
  const r = hungarianMatch(preds, gts, opts);
  assert.deepEqual(r.pairs.map((p) => [p.pred, p.gt]), [[0, 1], [1, 0]]);
  assert.deepEqual(r.unmatchedPreds, [2]);
  assert.deepEqual(r.unmatchedGts, [2]);
  assert.ok(Math.abs(r.ious[0] - 0.9) < 1e-9);
  assert.deepEqual(r.ious, r.pairs.map((p) => p.iou));
});

Deno.test("pairs under the IoU gate are forbidden and counted", () => {
  const r = hungarianMatch([[0, 0, 100, 100]], [[50, 0, 150, 100]], opts); // IoU 1/3
  assert.equal(r.pairs.length, 1);
  const g = hungarianMatch([[0, 0, 100, 100]], [[50, 0, 150, 100]], {
    ...opts,
    iouGate: 0.5,
  });
  assert.equal(g.pairs.length, 0);
  assert.equal(g.gateRejections, 1);
  assert.deepEqual(g.unmatchedPreds, [0]);
  assert.deepEqual(g.unmatchedGts, [0]);
});

Deno.test("only the top-k candidates of each prediction are eligible", () => {
  // pred 0 overlaps gt0 (best) and gt1 (second); pred 1 overlaps only gt0 better.
  const preds: Xyxy[] = [[0, 0, 100, 100], [0, 0, 100, 95]];
  const gts: Xyxy[] = [[0, 0, 100, 96], [0, 0, 100, 80]];
  const k2 = hungarianMatch(preds, gts, { ...opts, candidateTopK: 2 });
  assert.equal(k2.pairs.length, 2);
  // With k=1 both predictions want gt0 only; one of them must stay unmatched
  // even though gt1 overlaps it well.
  const k1 = hungarianMatch(preds, gts, { ...opts, candidateTopK: 1 });
  assert.equal(k1.pairs.length, 1);
  assert.deepEqual(k1.unmatchedGts, [1]);
});

Deno.test("centre distance ranks candidates when nothing overlaps (gate 0)", () => {
  const r = hungarianMatch(
    [[0, 0, 10, 10]],
    [[500, 500, 510, 510], [20, 20, 30, 30]],
    { ...opts, candidateTopK: 1, iouGate: 0, fpCost: 2, fnCost: 2 },
  );
  assert.deepEqual(r.pairs.map((p) => p.gt), [1]);
});

Deno.test("dummies make unmatched legal: a bad match costs more than fp+fn", () => {
  // IoU 0.4 -> cost 0.6 > fp+fn = 0.5: leaving both unmatched is cheaper.
  const pred: Xyxy[] = [[0, 0, 100, 100]];
  const gt: Xyxy[] = [[0, 0, 100, 40]];
  assert.ok(Math.abs(boxIou(pred[0], gt[0]) - 0.4) < 1e-12);
  const cheap = hungarianMatch(pred, gt, {
    ...opts,
    fpCost: 0.25,
    fnCost: 0.25,
  });
  assert.equal(cheap.pairs.length, 0);
  const dear = hungarianMatch(pred, gt, { ...opts, fpCost: 1, fnCost: 1 });
  assert.equal(dear.pairs.length, 1);
});

Deno.test("empty sides and option validation", () => {
  const e = hungarianMatch([], [[0, 0, 1, 1]], opts);
  assert.deepEqual([e.pairs, e.unmatchedPreds, e.unmatchedGts], [[], [], [0]]);
  const f = hungarianMatch([[0, 0, 1, 1]], [], opts);
  assert.deepEqual(f.unmatchedPreds, [0]);
  assert.throws(
    () => hungarianMatch([], [], { ...opts, candidateTopK: 0 }),
    /candidate_top_k/,
  );
  assert.throws(
    () => hungarianMatch([], [], { ...opts, iouGate: 2 }),
    /maskiou_gate/,
  );
  assert.throws(
    () => hungarianMatch([], [], { ...opts, fnCost: -1 }),
    /fn_cost/,
  );
});

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomBox(r: () => number): Xyxy {
  const x = Math.floor(r() * 800), y = Math.floor(r() * 800);
  return [x, y, x + 20 + Math.floor(r() * 200), y + 20 + Math.floor(r() * 200)];
}

/** Brute force: minimal total cost over all legal partial matchings. */
function bruteBest(
  preds: Xyxy[],
  gts: Xyxy[],
  allowed: boolean[][],
  o: MatchOptions,
): number {
  let best = Infinity;
  const used = new Array(gts.length).fill(false);
  const rec = (i: number, cost: number, matched: number) => {
    if (i === preds.length) {
      best = Math.min(best, cost + (gts.length - matched) * o.fnCost);
      return;
    }
    rec(i + 1, cost + o.fpCost, matched);
    for (let j = 0; j < gts.length; j++) {
      if (!used[j] && allowed[i][j]) {
        used[j] = true;
        rec(i + 1, cost + 1 - boxIou(preds[i], gts[j]), matched + 1);
        used[j] = false;
      }
    }
  };
  rec(0, 0, 0);
  return best;
}

Deno.test("optimal and deterministic on random instances (vs brute force)", () => {
  const r = lcg(7);
  const o = { candidateTopK: 2, iouGate: 0.1, fpCost: 0.7, fnCost: 0.6 };
  for (let t = 0; t < 40; t++) {
    const preds = Array.from(
      { length: 1 + Math.floor(r() * 5) },
      () => randomBox(r),
    );
    const gts = Array.from(
      { length: 1 + Math.floor(r() * 5) },
      () => randomBox(r),
    );
    const res = hungarianMatch(preds, gts, o);
    assert.deepEqual(hungarianMatch(preds, gts, o), res);
    // Rebuild the allowed set to brute-force the optimum.
    const allowed = preds.map((p) => {
      const ious = gts.map((g) => boxIou(p, g));
      const any = ious.some((v) => v > 0);
      const order = gts.map((_, j) => j).sort((a, b) =>
        any ? ious[b] - ious[a] || a - b : a - b
      );
      const row = new Array(gts.length).fill(false);
      if (any) {
        for (const j of order.slice(0, o.candidateTopK)) {
          row[j] = ious[j] >= o.iouGate;
        }
      }
      return row;
    });
    const got = res.pairs.reduce((s, p) => s + 1 - p.iou, 0) +
      res.unmatchedPreds.length * o.fpCost + res.unmatchedGts.length * o.fnCost;
    assert.ok(
      Math.abs(got - bruteBest(preds, gts, allowed, o)) < 1e-9,
      `instance ${t}`,
    );
    for (const p of res.pairs) {
      assert.ok(allowed[p.pred][p.gt], "forbidden pair chosen");
    }
  }
});

Deno.test("ties resolve the same way every time (lower index first)", () => {
  const box: Xyxy = [0, 0, 100, 100];
  const r = hungarianMatch([box, box], [box, box], opts);
  assert.deepEqual(r.pairs.map((p) => [p.pred, p.gt]).length, 2);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(hungarianMatch([box, box], [box, box], opts), r);
  }
});
