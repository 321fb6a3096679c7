import assert from "node:assert/strict";
import {
  changedRows,
  changedRowsByBatch,
  rowsEqualTo,
} from "../../../trainer/common/rows.ts";

Deno.test("changedRows: bitwise, so -0 vs 0 counts and equal NaNs do not", () => {
  const base = new Float32Array([1, 2, 0, 0, NaN, 5]);
  const same = base.slice();
  assert.deepEqual(changedRows(base, same, 2), []);
  const neg = base.slice();
  neg[2] = -0;
  assert.deepEqual(changedRows(base, neg, 2), [1]);
  const both = base.slice();
  both[0] = 1.0000001;
  both[5] = 6;
  assert.deepEqual(changedRows(base, both, 2), [0, 2]);
  assert.throws(
    () => changedRows(base, new Float32Array(4), 2),
    /shapes differ/,
  );
});

Deno.test("changedRowsByBatch: per batch row positions", () => {
  // B=2, T=2, H=1
  const base = new Float32Array([1, 2, 3, 4]);
  const act = new Float32Array([1, 9, 9, 4]);
  assert.deepEqual(changedRowsByBatch(base, act, 2, 1), [[1], [0]]);
});

Deno.test("rowsEqualTo: the rows bitwise equal to a reference row", () => {
  const ref = new Float32Array([0.5, -1]);
  const emb = new Float32Array([0.5, -1, 3, 3, 0.5, -1]);
  assert.deepEqual(rowsEqualTo(emb, ref), [0, 2]);
  // -0 differs from 0 bitwise, so a row that is only numerically equal is not a placeholder
  assert.deepEqual(
    rowsEqualTo(new Float32Array([0, 1, -0, 1]), new Float32Array([0, 1])),
    [0],
  );
  assert.deepEqual(rowsEqualTo(new Float32Array(0), ref), []);
});
