import assert from "node:assert/strict";
import { checkText } from "../../../audit/normalize/mod.ts";
import { found } from "./_helpers.ts";

Deno.test("markdown: sentence cues separate stating from forbidding", async () => {
  const src = [
    "Boxes are normalized by `/1000`. Never decode bins as `k/1000`.",
    "",
    "Bins decode as k/1000 and are clamped.",
    "",
  ].join("\n");
  const r = await checkText("a.md", src);
  assert.deepEqual(r.findings.map((f) => [f.line, f.column]), [[1, 26], [
    3,
    16,
  ]]);
});

Deno.test("markdown: offsets stay exact inside lists and blockquotes", async () => {
  const src = [
    "- first item",
    "  continues: bins decode as k/1000",
    "",
    "> quoted",
    "> boxes are normalized by /1000",
    "",
  ].join("\n");
  const r = await checkText("a.md", src);
  assert.deepEqual(r.findings.map((f) => [f.line, f.column]), [[2, 29], [
    5,
    27,
  ]]);
});

Deno.test("markdown: fenced code goes to the language's analyzer", async () => {
  const src = [
    "# Notes",
    "",
    "```python",
    "",
    "def f(k, w):",
    "",
    "    return k / 1000 * w",
    "```",
    "",
  ].join("\n");
  const r = await checkText("a.md", src);
  assert.deepEqual(r.findings.map((f) => [f.line, f.column, f.rule]), [[
    7,
    12,
    "decode-by-1000",
  ]]);
});

Deno.test("markdown: a block introduced as the wrong way is quoted", async () => {
  const code = "```python\nx = k / 1000 * w\n```\n";
  assert.deepEqual(await found("a.md", `Before (wrong):\n\n${code}`), []);
  assert.deepEqual(await found("a.md", `Decode like this:\n\n${code}`), [
    "4:decode-by-1000",
  ]);
});

Deno.test("markdown: explaining sections and changelogs quote, not state", async () => {
  const body = "Bins decode as k/1000 in that version.\n";
  assert.deepEqual(await found("a.md", `## Why 999\n\n${body}`), []);
  assert.deepEqual(await found("CHANGELOG.md", `## 0.2\n\n${body}`), []);
  assert.deepEqual(await found("a.md", `## Usage\n\n${body}`), [
    "3:prose-1000",
  ]);
});

Deno.test("markdown: counts, paths and link targets are not findings", async () => {
  const src = [
    "There are 1000 coord tokens, quantized to 1000 bins.",
    "",
    "Checkpoints go to `runs/a/1000/` and [trace](runs/b/1000/trace.jsonl).",
    "",
    "Pixels are capped at 1000 * 28 * 28 per image.",
    "",
  ].join("\n");
  assert.deepEqual(await found("a.md", src), []);
});
