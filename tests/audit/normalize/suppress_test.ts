import assert from "node:assert/strict";
import { checkText } from "../../../audit/normalize/mod.ts";

const LINE = "def f(box):\n    return [v / 1000 for v in box]";

Deno.test("suppress: same-line and line-above comments silence one line", async () => {
  const same = await checkText(
    "a.py",
    `${LINE}  # normalize-check: ignore -- legacy plot\n`,
  );
  assert.equal(same.findings.length, 0);
  assert.equal(same.suppressed.length, 1);
  assert.equal(same.suppressed[0].reason, "legacy plot");
  assert.equal(same.suppressed[0].finding.line, 2);

  const above = await checkText(
    "a.py",
    "def f(box):\n    # normalize-check: ignore(reading old dumps)\n    return [v / 1000 for v in box]\n",
  );
  assert.equal(above.findings.length, 0);
  assert.equal(above.suppressed[0].reason, "reading old dumps");
  assert.equal(above.suppressed[0].commentLine, 2);
});

Deno.test("suppress: a marker covers only its line, not the rest", async () => {
  const src = `# normalize-check: ignore\nx1 = 1\n${LINE}\n`;
  const r = await checkText("a.py", src);
  assert.deepEqual(r.findings.map((f) => f.line), [4]);
});

Deno.test("suppress: ignore-file silences and reports every finding", async () => {
  const src =
    `<!-- normalize-check: ignore-file: quotes the 2023 viewer -->\n\nBins decode as k/1000.\n`;
  const r = await checkText("a.md", src);
  assert.equal(r.findings.length, 0);
  assert.deepEqual(r.ignoredFile, {
    path: "a.md",
    commentLine: 1,
    reason: "quotes the 2023 viewer",
  });
  assert.equal(r.suppressed.length, 1);
});

Deno.test("suppress: the marker outside a comment does nothing", async () => {
  const src = `x = "normalize-check: ignore"\n${LINE}\n`;
  const r = await checkText("a.py", src);
  assert.equal(r.findings.length, 1);
});
