// normalize-check: ignore-file -- quotes the forms under test
/**
 * Each finding rests on evidence that the number is a coordinate-bin
 * normalization, not on the literal: the noise classes of issue 14 next to
 * the positives they must not swallow.
 */
import assert from "node:assert/strict";
import { found } from "./_helpers.ts";

Deno.test("prose: forbidding, replacing or quoting the cleanup is not a finding; stating it is", async () => {
  const md = [
    "# Notes", //                                                      1
    "", //                                                             2
    "- Ban `/1000` in any bin-to-float mapping.", //                   3
    "- [x] remove k/1000 from the validator", //                       4
    "", //                                                             5
    "The old helpers normalize by `/1000`; replace them with `/999`.", // 6
    "", //                                                             7
    "Nothing in this repository may normalize bins by", //             8
    "1000.", //                                                        9
    "", //                                                             10
    "Bins are normalized by 1000 before plotting.", //                 11
    "", //                                                             12
    "The viewer places boxes at `k / 1000` of the width, and", //      13
    "pixels follow as `k / 1000 * W`.", //                             14
    "",
  ].join("\n");
  // One finding per sentence, also across a wrapped line.
  assert.deepEqual(await found("notes.md", md), [
    "11:prose-1000",
    "13:prose-1000",
  ]);
});

Deno.test("prose and code: a vocabulary count is not a normalization", async () => {
  const md = [
    "A fractional `top_k` is converted with `ceil(top_k * 1000)`.",
    "",
    "Encode a pixel as `round(x / W * 1000)`.",
    "",
  ].join("\n");
  assert.deepEqual(await found("sampling.md", md), ["3:prose-1000"]);
  const py = [
    "import math",
    "def resolve(top_k):",
    "    return math.ceil(top_k * 1000)",
    "def encode(x, w):",
    "    return round(x / w * 1000)",
    "",
  ].join("\n");
  assert.deepEqual(await found("s.py", py), ["5:encode-by-1000"]);
  const ts = [
    "export const resolve = (topK: number) => Math.ceil(topK * 1000);",
    "export function share(p: { topK: number }) {",
    "  const k = resolve(p.topK);",
    "  return k / 1000;",
    "}",
    "export const rel = (k: number, w: number) => (k / 1000) * w;",
    "",
  ].join("\n");
  assert.deepEqual(await found("s.ts", ts), ["6:decode-by-1000"]);
});

Deno.test("data files: identifiers, paths and case ids are not findings; coordinate fields are", async () => {
  const json = JSON.stringify(
    {
      figures: ["figures/1000:9:4->5__pred.png", "runs/ab/1000/grid.png"],
      cases: [{ id: "val/1000", image: "img/1000.png", note: "k/1000" }],
      coords: { decode: "k / 1000 * W", divisor: 1000 },
      loss: { scale: 1000 },
    },
    null,
    1,
  );
  const lines = json.split("\n");
  const at = (s: string) => lines.findIndex((l) => l.includes(s)) + 1;
  assert.deepEqual(await found("index.json", json), [
    // A free-text note about bins states the rule; an id does not.
    `${at('"note"')}:prose-1000`,
    `${at('"decode"')}:prose-1000`,
    `${at('"divisor"')}:norm-param-1000`,
  ]);
});

Deno.test("code: a 1000 that is a step count, a size or a rate is not a finding", async () => {
  const py = [
    "def test_linear_decay_slope():", //                1
    "    steps = 1000", //                              2
    "    slope = 2.0 / float(steps)", //                3
    "    assert slope == pytest.approx(2.0 / 1000)", // 4
    "def limits(raw, boxes):", //                       5
    "    mb = len(raw) / 1000 / 1000", //               6
    "    big = MAX_BODY_BYTES // 1000", //              7
    '    line = "-" * 1000', //                         8
    "    per_k = len(boxes) * 1000 / n_images", //      9
    "    return [b / 1000 for b in boxes]", //          10
    "",
  ].join("\n");
  assert.deepEqual(await found("t.py", py), ["10:decode-by-1000"]);
});

Deno.test("code: evidence from a token parse, a clamp to bin 999 and the test's subject", async () => {
  const py = [
    "def from_token(tok):", //                                    1
    '    k = int(tok[len("<|coord_") : -2])', //                  2
    "    return k / 1000", //                                     3
    "def enc(v):", //                                             4
    "    return min(999, int(v * 1000))", //                      5
    "def test_v0():", //                                          6
    "    out = decode_boxes([[100, 200, 300, 400]], 640, 480)", // 7
    "    assert out[0][0] == pytest.approx(100 / 1000 * 640)", // 8
    "    assert lr_at(0) == pytest.approx(1e-4 / 1000)", //      9
    "",
  ].join("\n");
  assert.deepEqual(await found("e.py", py), [
    "3:decode-by-1000",
    "5:encode-by-1000",
    "8:test-expect-1000",
  ]);
});

Deno.test("openspec: a change's proposal and tasks narrate; its spec deltas are checked", async () => {
  const proposal = "## Why\n\nThe viewer divides bins by 1000.\n\n" +
    "## What Changes\n\n- The viewer decodes bins as `k / 1000` of the width today.\n";
  assert.deepEqual(
    await found("openspec/changes/fix-viewer/proposal.md", proposal),
    [],
  );
  const delta = "## ADDED Requirements\n\n### Requirement: Decode\n\n" +
    "The viewer SHALL decode bins as `k / 1000`.\n";
  assert.deepEqual(
    await found("openspec/changes/fix-viewer/specs/viewer/spec.md", delta),
    ["5:prose-1000"],
  );
});
