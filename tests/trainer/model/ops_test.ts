import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import {
  embeddingLookup,
  mm,
  mmConstLeft,
  mmConstRight,
  scatterRows,
} from "../../../trainer/model/ops.ts";
import { maxAbsDiff } from "./helpers.ts";

await initRuntime({ log: () => {} });

/** Gradients of sum(f(x, y) * w) for a fixed random weighting w. */
function grads2(
  f: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor,
  x: tf.Tensor,
  y: tf.Tensor,
): Float32Array[] {
  const w = tf.randomNormal(f(x, y).shape, 0, 1, "float32", 3);
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(tf.mul(f(a, b), w))
  )([x, y]);
  return g.map((t) => t.dataSync() as Float32Array);
}

Deno.test("mm gradients equal tf.matMul's on both weight-gradient strategies", () => {
  for (const [m, k, n] of [[8, 64, 4], [64, 4, 32], [5, 7, 3]]) {
    const a = tf.randomNormal([m, k], 0, 1, "float32", 1),
      b = tf.randomNormal([k, n], 0, 1, "float32", 2);
    const ours = grads2((x, y) => mm(x as tf.Tensor2D, y as tf.Tensor2D), a, b);
    const ref = grads2(
      (x, y) => tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D),
      a,
      b,
    );
    assert.ok(maxAbsDiff(ours[0], ref[0]) < 1e-4, `da ${m}x${k}x${n}`);
    assert.ok(maxAbsDiff(ours[1], ref[1]) < 1e-4, `db ${m}x${k}x${n}`);
  }
});

Deno.test("constant-operand matmuls differentiate only the other operand, correctly", () => {
  const a = tf.randomNormal([6, 5], 0, 1, "float32", 4),
    c = tf.randomNormal([5, 3], 0, 1, "float32", 5);
  const w = tf.randomNormal([6, 3], 0, 1, "float32", 6);
  const ref = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
    tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), w))
  )([a, c]);
  const dA = tf.grad((x: tf.Tensor) =>
    tf.sum(
      tf.mul(
        mmConstRight(
          x as tf.Tensor2D,
          c as tf.Tensor2D,
          tf.transpose(c) as tf.Tensor2D,
        ),
        w,
      ),
    )
  )(a);
  const dC = tf.grad((y: tf.Tensor) =>
    tf.sum(tf.mul(mmConstLeft(a as tf.Tensor2D, y as tf.Tensor2D), w))
  )(c);
  assert.ok(maxAbsDiff(dA.dataSync(), ref[0].dataSync()) < 1e-5);
  assert.ok(maxAbsDiff(dC.dataSync(), ref[1].dataSync()) < 1e-5);
});

Deno.test("embedding lookup and row scatter: exact forward, gradients as the dense equivalents", () => {
  const table = tf.randomNormal([10, 4], 0, 1, "float32", 7) as tf.Tensor2D;
  const ids = Int32Array.from([3, 3, 9, 0, 3]);
  const got = embeddingLookup(table, ids);
  assert.deepEqual(got.dataSync().slice(0, 4), table.dataSync().slice(12, 16));
  const w = tf.randomNormal([5, 4], 0, 1, "float32", 8);
  const dOurs = tf.grad((t: tf.Tensor) =>
    tf.sum(tf.mul(embeddingLookup(t as tf.Tensor2D, ids), w))
  )(table);
  // Reference one-hot built on the JS side, independent of tf.oneHot.
  const dense = new Float32Array(ids.length * 10);
  ids.forEach((id, i) => dense[i * 10 + id] = 1);
  const oneHot = tf.tensor2d(dense, [ids.length, 10]);
  const dRef = tf.grad((t: tf.Tensor) =>
    tf.sum(tf.mul(tf.matMul(oneHot, t as tf.Tensor2D), w))
  )(table);
  assert.ok(maxAbsDiff(dOurs.dataSync(), dRef.dataSync()) < 1e-5);
  // By hand: row 3 accumulates w rows 0, 1 and 4; an unused row gets 0.
  const wv = w.dataSync(), g = dOurs.dataSync();
  for (let h = 0; h < 4; h++) {
    const want = wv[h] + wv[4 + h] + wv[16 + h];
    assert.ok(Math.abs(g[12 + h] - want) < 1e-5, `d table[3][${h}]`);
    assert.equal(g[4 + h], 0);
  }
  assert.throws(
    () => embeddingLookup(table, Int32Array.from([10])),
    /token id 10 .*outside the vocabulary \[0, 10\)/,
  );

  const base = tf.randomNormal([6, 4], 0, 1, "float32", 9) as tf.Tensor2D;
  const src = tf.randomNormal([2, 4], 0, 1, "float32", 10) as tf.Tensor2D;
  const rows = Int32Array.from([1, 4]);
  const rep = scatterRows(base, src, rows, "replace").dataSync();
  assert.deepEqual(rep.slice(4, 8), src.dataSync().slice(0, 4));
  assert.deepEqual(rep.slice(0, 4), base.dataSync().slice(0, 4));
  const sel = tf.tensor2d([[0, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 0]]); // [6, 2] placement
  const keep = tf.tensor2d([[1], [0], [1], [1], [0], [1]]);
  for (const mode of ["replace", "add"] as const) {
    const ours = grads2(
      (b, s) => scatterRows(b as tf.Tensor2D, s as tf.Tensor2D, rows, mode),
      base,
      src,
    );
    const dense = (b: tf.Tensor, s: tf.Tensor) =>
      tf.add(
        mode === "replace" ? tf.mul(b, keep) : b,
        tf.matMul(sel, s as tf.Tensor2D),
      );
    const ref = grads2(dense, base, src);
    assert.ok(
      maxAbsDiff(ours[0], ref[0]) < 1e-5 && maxAbsDiff(ours[1], ref[1]) < 1e-5,
      mode,
    );
  }
});
