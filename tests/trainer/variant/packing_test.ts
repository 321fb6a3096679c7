import assert from "node:assert/strict";
import {
  fillCount,
  packingRope,
  packRow,
  padRows,
  type RopeFn,
  ropeProbe,
} from "../../../trainer/variant/packing.ts";
import type { RawSample } from "../../../trainer/variant/contract.ts";
import { getRopeIndex } from "../../../trainer/model/rope.ts";
import { tinyConfig } from "../../../trainer/model/config.ts";

/** A sample of `n` tokens whose first `img` tokens stand for image placeholders. */
function sample(n: number, tag: number, img = 0): RawSample {
  const ids = Int32Array.from({ length: n }, (_, i) => i < img ? 7 : 100 + tag);
  return {
    index: tag,
    record: {
      images: [],
      width: 32,
      height: 32,
      objects: [],
      source: `s${tag}`,
    },
    pixelValues: new Float32Array(img * 4 * 3).fill(tag),
    pixelShape: [img * 4, 3],
    imageGridThw: img ? [[1, 2, 2 * img]] : [],
    promptLength: 1,
    inputIds: ids,
    roles: Uint8Array.from(ids, (_, i) => (i === 0 ? 0 : 1)),
    coordSlots: [],
    objects: [],
  };
}

/** Stand-in for the model's getRopeIndex: t = i, h = 10 + i, w = 20 + i. */
const rope: RopeFn = (ids) => [
  Int32Array.from(ids, (_, i) => i),
  Int32Array.from(ids, (_, i) => 10 + i),
  Int32Array.from(ids, (_, i) => 20 + i),
];

Deno.test("packing: row 0 restarts at 0 per segment; rows 1..3 are each sample's mRoPE", () => {
  const b = packRow([sample(3, 1, 1), sample(2, 2), sample(4, 3, 2)], rope, 16);
  assert.equal(b.batch, 1);
  assert.equal(b.length, 9);
  const row = (k: number) =>
    Array.from(b.positionIds.slice(k * 9, (k + 1) * 9));
  assert.deepEqual(row(0), [0, 1, 2, 0, 1, 0, 1, 2, 3]);
  assert.deepEqual(row(1), [0, 1, 2, 0, 1, 0, 1, 2, 3]);
  assert.deepEqual(row(2), [10, 11, 12, 10, 11, 10, 11, 12, 13]);
  assert.deepEqual(b.segmentStarts, [[0, 3, 5]]);
  assert.deepEqual(b.segmentLengths, [[3, 2, 4]]);
  assert.deepEqual(Array.from(b.inputIds), [
    7,
    101,
    101,
    102,
    102,
    7,
    7,
    103,
    103,
  ]);
  // pixel rows of all images, in row order; one grid per image
  assert.deepEqual(b.pixelShape, [12, 3]);
  assert.equal(b.pixelValues[0], 1);
  assert.equal(b.pixelValues[4 * 3], 3);
  assert.deepEqual(b.imageGridThw, [[1, 2, 2], [1, 2, 4]]);
});

Deno.test("packing refuses rows over max_length and rope output of the wrong shape", () => {
  assert.throws(
    () => packRow([sample(10, 1), sample(8, 2)], rope, 16),
    /max_length 16/,
  );
  const bad: RopeFn = (
    ids,
  ) => [
    new Int32Array(ids.length),
    new Int32Array(1),
    new Int32Array(ids.length),
  ];
  assert.throws(() => packRow([sample(3, 1)], bad, 16), /3 rows of its length/);
});

Deno.test("padded rows: one segment per row, pad id after the sample, positions continue", () => {
  const b = padRows([sample(2, 1), sample(4, 2)], rope, 0);
  assert.equal(b.batch, 2);
  assert.equal(b.length, 4);
  assert.deepEqual(Array.from(b.inputIds), [
    101,
    101,
    0,
    0,
    102,
    102,
    102,
    102,
  ]);
  // row t of batch row 0 continues 0,1 -> 2,3 over the padding
  assert.deepEqual(Array.from(b.positionIds.slice(8, 12)), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(b.positionIds.slice(0, 4)), [0, 1, 2, 3]);
  assert.deepEqual(b.segmentLengths, [[2], [4]]);
});

Deno.test("greedy fill takes consecutive samples while they fit", () => {
  assert.equal(fillCount([5, 5, 5], 4, 12), 2);
  assert.equal(fillCount([5, 5, 5], 2, 100), 2);
  assert.equal(fillCount([20, 1], 4, 12), 1);
});

Deno.test("packingRope: the start-up probe fails with a fix when packing is on and 4-row ids cannot be built", () => {
  const config = tinyConfig(64, {
    imageTokenId: 5,
    visionStartTokenId: 3,
    visionEndTokenId: 4,
    imEndTokenId: 2,
  });
  const probe = ropeProbe(config, [9, 10]);
  // the probe runs the image branch too: 3 image tokens + 2 text tokens
  assert.deepEqual([...probe.inputIds], [3, 5, 4, 9, 10]);
  const model = { config, getRopeIndex };
  const rows = packingRope(model, true, probe)(
    probe.inputIds,
    probe.imageGridThw,
  );
  assert.deepEqual(rows.map((r) => r.length), [5, 5, 5]);
  assert.throws(
    () => packingRope({ config }, true, probe),
    /packing is on but the model offers no getRopeIndex.*training\.packing\.enabled: false/,
  );
  // a grid that does not match the placeholders: getRopeIndex fails at start-up
  assert.throws(
    () => packingRope(model, true, { ...probe, imageGridThw: [[1, 4, 4]] }),
    /packing is on but mRoPE positions .* cannot be computed \(.*\); set training\.packing\.enabled: false/,
  );
  // packing off: nothing is probed, even without getRopeIndex
  assert.equal(typeof packingRope({ config }, false, probe), "function");
});
