import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import { assertFullLogits, stage2Loss } from "../../../trainer/stage2/loss.ts";
import type { Stage2Batch } from "../../../trainer/stage2/batch.ts";

await initRuntime({ log: () => {} });

const V = 1010; // ids 0..9 text, 10..1009 coord bins
const COORD = Array.from({ length: 1000 }, (_, k) => 10 + k);
const L = 9;
// row: [t, t, c(100), c(200), c(600), c(900), t, t, t]
const ids = Int32Array.from([1, 2, 110, 210, 610, 910, 3, 4, 5]);

function batch(over: Partial<Stage2Batch> = {}): Stage2Batch {
  return {
    inputIds: ids,
    batch: 1,
    length: L,
    positionIds: new Int32Array(4 * L),
    pixelValues: new Float32Array(0),
    pixelShape: [0, 0],
    imageGridThw: [],
    ceWeights: Float32Array.from([0, 1, 0, 0, 0, 0, 0.5, 1, 1]),
    boxes: [{
      positions: [2, 3, 4, 5],
      target: [100, 200, 600, 900],
      kind: "gt",
    }],
    coordSlots: [2, 3, 4, 5],
    segmentStarts: [[0]],
    segmentLengths: [[L]],
    packed: true,
    ...over,
  };
}

/** Logits whose row `r` peaks at token `ids[r + shift]`. */
function peaked(shift: number, scale = 30): tf.Tensor3D {
  const z = new Float32Array(L * V);
  for (let r = 0; r < L; r++) {
    const t = r + shift;
    if (t >= 0 && t < L) z[r * V + ids[t]] = scale;
  }
  return tf.tensor3d(z, [1, L, V]);
}

const opts = { coordTokenIds: COORD, bboxL1Weight: 2, bboxGiouWeight: 3 };

Deno.test("CE is sum(w*nll)/max(sum w, 1) over next-token predictions", () => {
  const z = tf.randomNormal([1, L, V], 0, 1, "float32", 3) as tf.Tensor3D;
  const r = stage2Loss(z, batch(), opts);
  const logp = tf.logSoftmax(z.reshape([L, V])).arraySync() as number[][];
  const w = batch().ceWeights;
  let num = 0, den = 0;
  for (let f = 1; f < L; f++) {
    num += w[f] * -logp[f - 1][ids[f]];
    den += w[f];
  }
  assert.ok(Math.abs(r.ce.dataSync()[0] - num / den) < 1e-4);
  assert.equal(r.ceWeightSum, den);
  const total = r.ce.dataSync()[0] + 2 * r.l1.dataSync()[0] +
    3 * r.giou.dataSync()[0];
  assert.ok(Math.abs(r.total.dataSync()[0] - total) < 1e-4);
  // No supervised tokens: denominator clamps to 1, CE is 0.
  const none = stage2Loss(z, batch({ ceWeights: new Float32Array(L) }), opts);
  assert.equal(Math.abs(none.ce.dataSync()[0]), 0);
});

Deno.test("coord slot p is decoded from logits at p-1 (causal shift) [1.7.2]", () => {
  // Logits at r predict token r+1: the correct shift gives ~zero geometry loss.
  const good = stage2Loss(peaked(1), batch(), opts);
  assert.ok(good.l1.dataSync()[0] < 1e-4, `l1 ${good.l1.dataSync()[0]}`);
  assert.ok(good.giou.dataSync()[0] < 1e-3);
  // Negative: logits aligned to p itself (no shift) are read wrongly -> big loss.
  const bad = stage2Loss(peaked(0), batch(), opts);
  assert.ok(bad.l1.dataSync()[0] > 0.1);
});

Deno.test("guardrails: sliced logits, CE on coord tokens, slot at position 0 [1.7.10]", () => {
  assert.throws(
    () => stage2Loss(tf.zeros([1, L - 1, V]) as tf.Tensor3D, batch(), opts),
    /sliced logits/,
  );
  assert.throws(
    () => assertFullLogits(tf.zeros([1, 1, V]), 1, L),
    /logitsToKeep/,
  );
  const w = batch().ceWeights.slice();
  w[3] = 1;
  assert.throws(
    () => stage2Loss(peaked(1), batch({ ceWeights: w }), opts),
    /coord tokens never get CE/,
  );
  assert.throws(
    () =>
      stage2Loss(
        peaked(1),
        batch({
          boxes: [{
            positions: [0, 3, 4, 5],
            target: [0, 0, 0, 0],
            kind: "gt",
          }],
        }),
        opts,
      ),
    /no previous position/,
  );
  assert.throws(
    () =>
      stage2Loss(
        peaked(1),
        batch({
          boxes: [{
            positions: [1, 3, 4, 5],
            target: [0, 0, 0, 0],
            kind: "gt",
          }],
        }),
        opts,
      ),
    /not a coord token/,
  );
});

Deno.test("gradients are finite and reach the logits", () => {
  const z = tf.variable(peaked(1, 1e4));
  const { value, grads } = tf.variableGrads(
    () => stage2Loss(z as unknown as tf.Tensor3D, batch(), opts).total,
    [z],
  );
  assert.ok(Number.isFinite(value.dataSync()[0]));
  const g = grads[z.name].dataSync();
  assert.ok(g.every(Number.isFinite));
});
