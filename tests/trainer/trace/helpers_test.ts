import assert from "node:assert/strict";
import { splitPositionIds } from "../../../trainer/trace/helpers.ts";

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
