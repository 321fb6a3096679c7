import assert from "node:assert/strict";
import { initRuntime, tf } from "../../trainer/runtime.ts";

Deno.test("runtime picks a backend and runs forward+backward", async () => {
  const info = await initRuntime({ log: () => {} });
  assert.ok(["tensorflow", "blas", "wasm", "cpu"].includes(info.backend));
  // y = sum((x W)^2): dy/dW = 2 x^T (x W), checked against a hand computation.
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const w = tf.variable(tf.tensor2d([[0.5, -1], [0.25, 2]]));
  const { value, grads } = tf.variableGrads(() =>
    tf.sum(tf.square(tf.matMul(x, w))) as tf.Scalar
  );
  const xw = [[1, 3], [2.5, 5]];
  assert.equal(await value.data().then((d) => d[0]), 1 + 9 + 6.25 + 25);
  const g = await grads[w.name].array() as number[][];
  const want = [
    [2 * (1 * xw[0][0] + 3 * xw[1][0]), 2 * (1 * xw[0][1] + 3 * xw[1][1])],
    [2 * (2 * xw[0][0] + 4 * xw[1][0]), 2 * (2 * xw[0][1] + 4 * xw[1][1])],
  ];
  assert.deepEqual(g, want);
});
