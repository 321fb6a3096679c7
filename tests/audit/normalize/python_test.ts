import assert from "node:assert/strict";
import { checkText } from "../../../audit/normalize/mod.ts";
import { found } from "./_helpers.ts";

Deno.test("python: a default reaching a division is reported at the literal", async () => {
  const src = [
    "def decode(k, scale=1000.0):",
    "    return k / scale",
    "",
  ].join("\n");
  const r = await checkText("a.py", src);
  assert.equal(r.findings.length, 1);
  const f = r.findings[0];
  assert.deepEqual([f.line, f.column, f.rule], [1, 21, "norm-param-1000"]);
  assert.match(f.message, /k \/ scale/);
  assert.equal(f.snippet, "def decode(k, scale=1000.0):");
});

Deno.test("python: names resolve per function scope", async () => {
  // `scale` in `b` is its own parameter, not `a`'s default.
  const src = [
    "def a(x, factor=1000):",
    "    return x",
    "",
    "def b(box, factor):",
    "    return [v / factor for v in box]",
    "",
  ].join("\n");
  assert.deepEqual(await found("a.py", src), []);
  const flowing = src.replace(
    "def b(box, factor):",
    "def b(box, factor=1000):",
  );
  assert.deepEqual(await found("a.py", flowing), ["4:norm-param-1000"]);
});

Deno.test("python: constant folding decides, not the digits", async () => {
  assert.deepEqual(
    await found("a.py", "def f(k, box):\n    return k / (1000 - 1)\n"),
    [],
  );
  // Found where the file passes the prefilter (some 1000 is an operand).
  const sneaky = "def f(k, box):\n    return k / (999 + 1), box * 1000\n";
  assert.deepEqual(await found("a.py", sneaky), [
    "2:decode-by-1000",
    "2:encode-by-1000",
  ]);
  assert.deepEqual(
    await found("a.py", "def f(k, box):\n    return k / float(1000)\n"),
    [
      "2:decode-by-1000",
    ],
  );
});

Deno.test("python: loop bindings carry the iterable's words", async () => {
  // Without the binding `v` says nothing; `bbox` makes it a coordinate.
  const src = "def f(bbox):\n    return [v / 1000 for v in bbox]\n";
  assert.deepEqual(await found("plain.py", src), ["2:decode-by-1000"]);
  const timing =
    "def f(durations):\n    return [v / 1000 for v in durations]\n";
  assert.deepEqual(await found("plain.py", timing), []);
});

Deno.test("python: time, counts and strides are not coordinates", async () => {
  const src = [
    "import time",
    "def f(bins, i, k, n_samples, t0):",
    "    elapsed = time.time() - t0",
    "    ms = elapsed * 1000",
    "    z = [0] * (len(bins) * 1000)",
    "    z[i * 1000 + k] = 1",
    "    per_k = n_samples / 1000",
    "    return ms, z, per_k, min(1000, k + 1)",
    "",
  ].join("\n");
  assert.deepEqual(await found("a.py", src), []);
});

Deno.test("python: assertions make test expectations, abs() a tolerance", async () => {
  const src = [
    "def test_decode(pred, gt):",
    "    assert decode(500) == 500 / 1000",
    "    assert abs(pred[0] - gt[0]) < 2 / 1000",
    "",
  ].join("\n");
  assert.deepEqual(await found("t.py", src), [
    "2:test-expect-1000",
    "3:tolerance-1000",
  ]);
});

Deno.test("python: comments and docstrings are prose; strings are not", async () => {
  const src = [
    '"""Boxes are normalized by /1000."""',
    "# bins decode as k/1000",
    "# never decode bins as k/1000",
    'PATH = "runs/x/k/1000"',
    'HELP = "bins decode as k/1000"',
    "",
  ].join("\n");
  assert.deepEqual(await found("a.py", src), ["1:prose-1000", "2:prose-1000"]);
});

Deno.test("python: a trailing comment does not join the next comment's sentence", async () => {
  const src = [
    "x = 1  # bins decode as k/1000",
    "# Do not copy the line above.",
    "",
  ].join("\n");
  assert.deepEqual(await found("a.py", src), ["1:prose-1000"]);
});
