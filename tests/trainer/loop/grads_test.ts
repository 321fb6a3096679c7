import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  clipByGlobalNorm,
  GradAccumulator,
} from "../../../trainer/loop/grads.ts";

await initRuntime({ log: () => {} });

Deno.test("global-norm clipping scales all gradients by max/(norm+1e-6)", () => {
  const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
  const norm = clipByGlobalNorm(grads, 1);
  assert.ok(Math.abs(norm - 5) < 1e-6);
  const k = 1 / (5 + 1e-6);
  assert.ok(Math.abs(grads.a.dataSync()[0] - 3 * k) < 1e-6);
  assert.ok(Math.abs(grads.b.dataSync()[1] - 4 * k) < 1e-6);
});

Deno.test("clipping leaves gradients under the limit untouched, and 0 disables it", () => {
  const g1 = { a: tf.tensor1d([0.3, 0.4]) };
  assert.ok(Math.abs(clipByGlobalNorm(g1, 1) - 0.5) < 1e-6);
  assert.deepEqual(Array.from(g1.a.dataSync()), [
    0.30000001192092896,
    0.4000000059604645,
  ]);
  const g2 = { a: tf.tensor1d([30, 40]) };
  clipByGlobalNorm(g2, 0);
  assert.deepEqual(Array.from(g2.a.dataSync()), [30, 40]);
});

Deno.test("accumulation averages micro-batch gradients (sum / window)", () => {
  const acc = new GradAccumulator();
  acc.add({ w: tf.tensor1d([1, 2]) });
  acc.add({ w: tf.tensor1d([3, 6]) });
  acc.add({ w: tf.tensor1d([2, 1]) });
  assert.equal(acc.size, 3);
  const m = acc.mean();
  assert.deepEqual(Array.from(m.w.dataSync()), [2, 3]);
  assert.equal(acc.size, 0);
  assert.throws(() => acc.mean(), /no gradients/);
});
