import assert from "node:assert/strict";
import {
  selectSpans,
  topLevelSpans,
} from "../../../audit/normalize/pychunks.ts";

const SRC = [
  "import os", // 0
  '"""Doc', // 1: a docstring whose lines sit at column 0
  "x = not a statement",
  '"""',
  "@decorator", // 4: decorator joins its def
  "def f(a,",
  "b=1):",
  "    return a",
  "if a:", // 8
  "    pass",
  "else:", // `else` joins the `if`
  "    pass",
  "y = 1 + \\",
  "z", // continuation line
  "",
].join("\n");

Deno.test("pychunks: statements split at column 0 outside strings and brackets", () => {
  const firstLines = topLevelSpans(SRC).map(([s]) =>
    SRC.slice(s, SRC.indexOf("\n", s))
  );
  assert.deepEqual(firstLines, [
    "import os",
    '"""Doc',
    "@decorator",
    "if a:",
    "y = 1 + \\",
  ]);
});

Deno.test("pychunks: selection follows names bound to a thousand", () => {
  const src = [
    "import numpy as np",
    "NORM = 1000",
    "def unrelated():",
    "    return 1",
    "def use(x1):",
    "    return x1 / NORM",
    "def other():",
    "    return 2",
    "def more():",
    "    return 3",
    "",
  ].join("\n");
  const picked = selectSpans(src)!.map(([s, e]) => src.slice(s, e));
  assert.deepEqual(picked, [
    "NORM = 1000\n",
    "def use(x1):\n    return x1 / NORM\n",
  ]);
});
