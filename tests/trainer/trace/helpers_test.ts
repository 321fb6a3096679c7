import assert from "node:assert/strict";
import {
  buildSoftctxTrace,
  changedRows,
  changedRowsByBatch,
  expectedRolloutSeedBase,
  rowsBitwiseEqual,
  segmentSpans,
  splitPositionIds,
} from "../../../trainer/trace/helpers.ts";

Deno.test("segmentSpans: a segment starts at every 0 of row 0", () => {
  assert.deepEqual(segmentSpans([0, 1, 2, 0, 1, 0]), [[0, 3], [3, 2], [
    5,
    1,
  ]]);
  assert.deepEqual(segmentSpans(new Int32Array([0, 1, 2, 3])), [[0, 4]]);
  // a row that never restarts is one segment: packing bugs show up as fewer segments
  assert.deepEqual(segmentSpans([0, 1, 2, 3, 4, 5]).length, 1);
  assert.deepEqual(segmentSpans([]), []);
});

Deno.test("splitPositionIds: [4,B,T] -> row0 [B][T], mrope [B][3][T]", () => {
  // B=2, T=3; row r, batch b, pos t holds r*100 + b*10 + t
  const flat = new Int32Array(4 * 2 * 3);
  for (let r = 0; r < 4; r++) {
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 3; t++) {
        flat[(r * 2 + b) * 3 + t] = r * 100 + b * 10 + t;
      }
    }
  }
  const { row0, mrope } = splitPositionIds(flat, 4, 2, 3);
  assert.deepEqual(row0, [[0, 1, 2], [10, 11, 12]]);
  assert.deepEqual(mrope[1], [[110, 111, 112], [210, 211, 212], [
    310,
    311,
    312,
  ]]);
  const three = splitPositionIds(flat.subarray(0, 18), 3, 2, 3);
  assert.equal(three.row0, null);
  assert.deepEqual(three.mrope[0][0], [0, 1, 2]);
  assert.throws(() => splitPositionIds(flat, 4, 2, 4), /expected 4x2x4/);
});

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

Deno.test("rowsBitwiseEqual: compares listed rows to a reference row", () => {
  const ref = new Float32Array([0.5, -1]);
  const emb = new Float32Array([0.5, -1, 3, 3, 0.5, -1]);
  assert.equal(rowsBitwiseEqual(emb, [0, 2], ref), true);
  assert.equal(rowsBitwiseEqual(emb, [0, 1], ref), false);
  assert.equal(rowsBitwiseEqual(emb, [3], ref), false); // out of range
});

Deno.test("expectedRolloutSeedBase: the spec formula, exact", () => {
  assert.equal(expectedRolloutSeedBase(42, 0), 42);
  assert.equal(expectedRolloutSeedBase(42, 3), 3000051);
  // wraps at 31 bits: 2147483647 + 1000003 -> 1000002
  assert.equal(expectedRolloutSeedBase(0x7FFFFFFF, 1), 1000002);
  // negative seeds follow two's complement like Python's &
  assert.equal(expectedRolloutSeedBase(-1, 0), 0x7FFFFFFF);
});

Deno.test("buildSoftctxTrace: changed rows per batch row, slot count", () => {
  // B=1, T=3, H=2: only position 2 (a coord slot) was overwritten
  const base = new Float32Array([1, 1, 2, 2, 3, 3]);
  const actual = new Float32Array([1, 1, 2, 2, 0.5, 0.25]);
  const s = buildSoftctxTrace({
    coordSlots: [[2]],
    sourcePositions: [[1]],
    base,
    actual,
    seqLen: 3,
    hidden: 2,
    baseFresh: true,
  });
  assert.deepEqual(s, {
    coordSlots: [[2]],
    sourcePositions: [[1]],
    changedRows: [[2]],
    nSlots: 1,
    baseFresh: true,
  });
});
