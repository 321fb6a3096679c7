import assert from "node:assert/strict";
import {
  getRopeIndex,
  packedPositionIds,
  tinyConfig,
} from "../../../trainer/model/mod.ts";
import { textRopeTables } from "../../../trainer/model/rope.ts";

const cfg = tinyConfig(64, {
  imageTokenId: 5,
  visionStartTokenId: 3,
  visionEndTokenId: 4,
  imEndTokenId: 2,
});

Deno.test("getRopeIndex gives image tokens (t, h, w) grid positions and resumes text at max + 1", () => {
  // text, vision_start, 4 image tokens (grid 1x4x4 patches -> 2x2 merged), vision_end, text
  const ids = Int32Array.from([9, 3, 5, 5, 5, 5, 4, 9]);
  const r = getRopeIndex(cfg, [ids], [[1, 4, 4]]);
  const rows = [0, 1, 2].map((
    a,
  ) => [...r.positionIds.subarray(a * 8, (a + 1) * 8)]);
  assert.deepEqual(rows, [
    [0, 1, 2, 2, 2, 2, 4, 5],
    [0, 1, 2, 2, 3, 3, 4, 5],
    [0, 1, 2, 3, 2, 3, 4, 5],
  ]);
  assert.deepEqual(r.ropeDeltas, [6 - 8]);
  // left padding: pads get position 1 and do not advance the others
  const padded = getRopeIndex(cfg, [Int32Array.from([0, 0, 9, 9])], [], [
    Int32Array.from([0, 0, 1, 1]),
  ]);
  assert.deepEqual([...padded.positionIds.subarray(0, 4)], [1, 1, 0, 1]);
  assert.throws(
    () => getRopeIndex(cfg, [ids], []),
    /image_grid_thw lists 0 image/,
  );
  assert.throws(
    () => getRopeIndex(cfg, [ids], [[1, 4, 8]]),
    /needs 8 consecutive image tokens/,
  );
  assert.throws(
    () => getRopeIndex(cfg, [ids], [[1, 4, 4], [1, 4, 4]]),
    /lists 2 image\(s\) but the token rows hold 1/,
  );
});

Deno.test("packedPositionIds restarts row 0 and every mRoPE row at each segment", () => {
  const pos = packedPositionIds(cfg, [
    { inputIds: Int32Array.from([9, 9]), imageGridThw: [] },
    {
      inputIds: Int32Array.from([3, 5, 5, 5, 5, 4]),
      imageGridThw: [[1, 4, 4]],
    },
  ]);
  assert.deepEqual([...pos.subarray(0, 8)], [0, 1, 0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...pos.subarray(8, 16)], [0, 1, 0, 1, 1, 1, 1, 3]);
  assert.deepEqual([...pos.subarray(16, 24)], [0, 1, 0, 1, 1, 2, 2, 3]);
});

Deno.test("interleaved mRoPE takes h and w frequencies at i % 3 == 1, 2 within their sections", () => {
  // one token with t=0, h=1, w=0: frequencies fed by the h axis are the only non-zero angles
  const { sin } = textRopeTables(cfg, Int32Array.from([0, 1, 0]), 1, 1);
  const half = cfg.text_config.head_dim / 2;
  const hAxis = [...sin.subarray(0, half)].map((v, i) => (v !== 0 ? i : -1))
    .filter((i) => i >= 0);
  assert.deepEqual(hAxis, [1, 4, 7, 10, 13]); // mrope_section[1] = 5 frequencies
  assert.deepEqual([...sin.subarray(half, 2 * half)], [
    ...sin.subarray(0, half),
  ]);
});
