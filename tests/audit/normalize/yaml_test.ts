import assert from "node:assert/strict";
import { found } from "./_helpers.ts";

Deno.test("yaml: normalizer keys are findings, sizes and counts are not", async () => {
  const src = [
    "image: {width: 1000, height: 800}",
    "num_bins: 1000",
    "coord_scale: 1000",
    "time_scale: 1000",
    "bbox_norm: 1000.0",
    "",
  ].join("\n");
  assert.deepEqual(await found("c.yaml", src), [
    "3:norm-param-1000",
    "5:norm-param-1000",
  ]);
});

Deno.test("yaml: comments and string values are prose with the key as context", async () => {
  const src = [
    "# boxes are stored as k/1000",
    "decode: 'k / 1000'",
    "path: runs/a/1000/x",
    "# never k/1000",
    "",
  ].join("\n");
  assert.deepEqual(await found("c.yml", src), ["1:prose-1000", "2:prose-1000"]);
});

Deno.test("json: the same rules through YAML's flow syntax", async () => {
  const src = '{\n  "coord_scale": 1000,\n  "width": 1000\n}\n';
  assert.deepEqual(await found("c.json", src), ["2:norm-param-1000"]);
});
