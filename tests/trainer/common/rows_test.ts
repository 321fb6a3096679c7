import assert from "node:assert/strict";
import {
  float32Bits,
  rowBitsEqual,
  rowsEqualTo,
} from "../../../trainer/common/rows.ts";

Deno.test("rowBitsEqual: bitwise, so -0 vs 0 counts and equal NaNs do not", () => {
  const x = float32Bits(new Float32Array([1, 2, 0, NaN, 1, 2, -0, NaN]));
  assert.equal(rowBitsEqual(x, 0, x, 4, 2), true);
  assert.equal(rowBitsEqual(x, 0, x, 4, 3), false); // 0 vs -0
  assert.equal(rowBitsEqual(x, 3, x, 7, 1), true); // the same NaN bits
  assert.equal(
    rowBitsEqual(x, 0, float32Bits(new Float32Array([1, 2.0000002])), 0, 2),
    false,
  );
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
