import assert from "node:assert/strict";
import {
  segmentsFromRow0,
  segmentSpans,
  spansFromSegmentIds,
} from "../../../trainer/common/segments.ts";

Deno.test("segmentsFromRow0 starts a segment at every 0 and nowhere else", () => {
  assert.deepEqual([
    ...segmentsFromRow0(Int32Array.from([0, 1, 2, 0, 1, 0, 0, 1])),
  ], [0, 0, 0, 1, 1, 2, 3, 3]);
  assert.deepEqual([...segmentsFromRow0(Int32Array.from([0, 1, 2, 3, 4]))], [
    0,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("segmentSpans: a segment starts at every 0 of row 0", () => {
  assert.deepEqual(segmentSpans([0, 1, 2, 0, 1, 0]), [[0, 3], [3, 2], [5, 1]]);
  assert.deepEqual(segmentSpans(new Int32Array([0, 1, 2, 3])), [[0, 4]]);
  // a row that never restarts is one segment: packing bugs show up as fewer segments
  assert.deepEqual(segmentSpans([0, 1, 2, 3, 4, 5]), [[0, 6]]);
  assert.deepEqual(segmentSpans([]), []);
  // consecutive zeros are one-token segments
  assert.deepEqual(spansFromSegmentIds(segmentsFromRow0([0, 0, 1])), [
    [0, 1],
    [1, 2],
  ]);
});
