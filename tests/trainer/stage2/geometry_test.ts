import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  bboxL1GiouLoss,
  expectationDecode,
} from "../../../trainer/stage2/geometry.ts";
import { decodeCoord } from "../../../trainer/coord/mod.ts";

await initRuntime({ log: () => {} });

function onehotLogits(bins: number[], scale = 50): tf.Tensor2D {
  const z = new Float32Array(bins.length * 1000);
  bins.forEach((k, i) => (z[i * 1000 + k] = scale));
  return tf.tensor2d(z, [bins.length, 1000]);
}

function allFinite(t: tf.Tensor): boolean {
  return Array.from(t.dataSync()).every(Number.isFinite);
}

Deno.test("expectation decode is E[k]/999, bin 999 -> 1.0 [1.7.1, 1.7.6]", () => {
  const c = expectationDecode(onehotLogits([0, 500, 999], 80)).dataSync();
  assert.ok(Math.abs(c[0] - 0) < 1e-6);
  assert.ok(Math.abs(c[1] - decodeCoord(500)) < 1e-6);
  assert.ok(Math.abs(c[2] - 1) < 1e-6);
  // Not /1000: bin 500 must decode to 500/999, which differs from 0.5.
  assert.ok(Math.abs(c[1] - 0.5) > 4e-4);
});

Deno.test("expectation decode is the mean, not the argmax [1.7.6]", () => {
  // Two equal modes at bins 100 and 900 (+ a tiny bias towards 100 so the
  // argmax is 100): the expectation is close to 500/999.
  const z = new Float32Array(1000).fill(-1e4);
  z[100] = 10.001;
  z[900] = 10;
  const c = expectationDecode(tf.tensor2d(z, [1, 1000])).dataSync()[0];
  assert.ok(Math.abs(c - 500 / 999) < 1e-3, `got ${c}`);
  assert.ok(Math.abs(c - 100 / 999) > 0.3);
});

Deno.test("temperature flattens the distribution; bad inputs rejected", () => {
  const z = onehotLogits([999], 5);
  const sharp = expectationDecode(z, 0.1).dataSync()[0];
  const flat = expectationDecode(z, 100).dataSync()[0];
  assert.ok(sharp > 0.99 && flat < 0.6);
  assert.throws(() => expectationDecode(z, 0), /temperature/);
  assert.throws(
    () => expectationDecode(tf.zeros([2, 999])),
    /\[\.\.\., 1000\]/,
  );
  // Works on any leading shape.
  assert.deepEqual(expectationDecode(tf.zeros([2, 3, 1000])).shape, [2, 3]);
  assert.ok(
    Math.abs(expectationDecode(tf.zeros([1000])).dataSync()[0] - 0.5) < 1e-6,
  );
});

Deno.test("L1 and GIoU match hand-computed values in normalized space [1.7.6]", () => {
  const { l1, giou } = bboxL1GiouLoss(
    tf.tensor2d([[0.1, 0.1, 0.5, 0.5], [0, 0, 0.2, 0.2]]),
    tf.tensor2d([[0.1, 0.1, 0.5, 0.6], [0.4, 0.4, 0.6, 0.6]]),
  );
  // l1: (0.1 + 4*0.4/ ... ) computed explicitly
  const l1Expected = (0.1 + 0.4 + 0.4 + 0.4 + 0.4) / 8;
  assert.ok(Math.abs(l1.dataSync()[0] - l1Expected) < 1e-6);
  // box 1: IoU = 0.16/0.2 = 0.8, enclosing = union -> GIoU 0.8
  // box 2: IoU 0, union 0.08, enclosing 0.36 -> GIoU = -(0.28/0.36)
  const g2 = -(0.36 - 0.08) / 0.36;
  const expected = ((1 - 0.8) + (1 - g2)) / 2;
  assert.ok(Math.abs(giou.dataSync()[0] - expected) < 1e-5);
});

Deno.test("GIoU canonicalizes and clips the predicted box", () => {
  const gt = tf.tensor2d([[0.2, 0.2, 0.6, 0.6]]);
  const swapped = bboxL1GiouLoss(tf.tensor2d([[0.6, 0.6, 0.2, 0.2]]), gt).giou
    .dataSync()[0];
  assert.ok(Math.abs(swapped) < 1e-5, "swapped corners are the same box");
  const out = bboxL1GiouLoss(
    tf.tensor2d([[-0.5, 0, 1.7, 1]]),
    tf.tensor2d([[0, 0, 1, 1]]),
  );
  assert.ok(Math.abs(out.giou.dataSync()[0]) < 1e-5, "clipped to [0,1]");
});

Deno.test("no NaN/Inf for degenerate boxes, huge logits; gradients finite", () => {
  const logits = tf.variable(
    tf.tensor3d(
      Array.from(
        { length: 3 * 4 * 1000 },
        (_, i) => (i % 997 === 0 ? 1e30 : -1e30),
      ),
      [3, 4, 1000],
    ),
  );
  const gt = tf.tensor2d([[0, 0, 0, 0], [1, 1, 1, 1], [0.5, 0.5, 0.5, 0.5]]);
  const { value, grads } = tf.variableGrads(() => {
    const pred = expectationDecode(logits, 0.01) as tf.Tensor2D;
    const { l1, giou } = bboxL1GiouLoss(pred, gt);
    return tf.add(l1, giou) as tf.Scalar;
  }, [logits]);
  assert.ok(allFinite(value));
  assert.ok(allFinite(grads[logits.name]));
  // Degenerate identical points: loss finite, gradient finite.
  const p = tf.variable(tf.tensor2d([[0.3, 0.3, 0.3, 0.3], [0, 0, 0, 0]]));
  const g2 = tf.variableGrads(() => {
    const { l1, giou } = bboxL1GiouLoss(
      p as unknown as tf.Tensor2D,
      tf.tensor2d([[0.3, 0.3, 0.3, 0.3], [1, 1, 1, 1]]),
    );
    return tf.add(l1, giou) as tf.Scalar;
  }, [p]);
  assert.ok(allFinite(g2.value) && allFinite(g2.grads[p.name]));
});

Deno.test("empty box set gives zero losses; shape mismatch rejected", () => {
  const { l1, giou } = bboxL1GiouLoss(tf.zeros([0, 4]), tf.zeros([0, 4]));
  assert.equal(l1.dataSync()[0], 0);
  assert.equal(giou.dataSync()[0], 0);
  assert.throws(
    () => bboxL1GiouLoss(tf.zeros([2, 4]), tf.zeros([1, 4])),
    /\[N, 4\]/,
  );
});
