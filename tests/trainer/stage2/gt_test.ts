import assert from "node:assert/strict";
import { extractGtBboxOnly } from "../../../trainer/stage2/gt.ts";

const rec = (objects: unknown) => ({ source: "train.jsonl:7", objects });

Deno.test("valid boxes pass through with coercion only", () => {
  const out = extractGtBboxOnly(rec([
    { desc: "cat", bbox_2d: [10, 20.4, "<|coord_300|>", 999] },
    { desc: "dot", bbox_2d: [5, 5, 5, 5] },
  ]));
  assert.deepEqual(out, [
    { desc: "cat", bbox_2d: [10, 20, 300, 999] },
    { desc: "dot", bbox_2d: [5, 5, 5, 5] },
  ]);
});

Deno.test("poly in ground truth is a hard error telling to filter upstream [1.7.3]", () => {
  assert.throws(
    () =>
      extractGtBboxOnly(rec([
        { desc: "a", bbox_2d: [0, 0, 1, 1] },
        { desc: "b", poly: [0, 0, 5, 0, 5, 5] },
      ])),
    /train\.jsonl:7: object 1 \("b"\) has geometry\/key "poly"; .*filter polygons .* upstream/,
  );
  // poly next to a bbox is still rejected (exactly one geometry).
  assert.throws(
    () =>
      extractGtBboxOnly(rec([{ desc: "b", bbox_2d: [0, 0, 1, 1], poly: [] }])),
    /"poly"/,
  );
  assert.throws(
    () => extractGtBboxOnly(rec([{ desc: "b", line: [0, 0, 1, 1] }])),
    /"line"/,
  );
});

Deno.test("malformed boxes are errors naming record and object; nothing repaired [1.7.3]", () => {
  const cases: [unknown, RegExp][] = [
    [
      { desc: "x", bbox_2d: [0, 0, 1] },
      /object 0 \("x"\): "bbox_2d" must be a list of 4/,
    ],
    [
      { desc: "x", bbox_2d: [0, 0, 1000, 5] },
      /bbox_2d\[2\]: .*outside \[0, 999\]/,
    ],
    [{ desc: "x", bbox_2d: [0, -1, 4, 5] }, /bbox_2d\[1\]/],
    [{ desc: "x", bbox_2d: [9, 0, 4, 5] }, /not ordered/],
    [{ desc: "x", bbox_2d: [0, 9, 4, 5] }, /not ordered/],
    [{ desc: "x", bbox_2d: [0, "abc", 4, 5] }, /bbox_2d\[1\]/],
    [{ desc: "", bbox_2d: [0, 0, 4, 5] }, /non-empty string "desc"/],
    [{ bbox_2d: [0, 0, 4, 5] }, /non-empty string "desc"/],
    [{ desc: "x" }, /no "bbox_2d"/],
    ["oops", /not a JSON object/],
  ];
  for (const [obj, re] of cases) {
    assert.throws(() => extractGtBboxOnly(rec([obj])), re);
  }
  assert.throws(() => extractGtBboxOnly({ objects: 3 }), /record: "objects"/);
});
