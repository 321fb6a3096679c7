/**
 * The architecture holds: imports flow one way (the layer order lives in
 * `tests/architecture.ts` and the README's "How data flows"), there are no
 * import cycles, the audit never loads TF.js, and the training loop stays
 * readable (`train()` under 120 lines, no function in `trainer/` over 150).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  findCycles,
  functionSizes,
  importGraph,
  imports,
  importSpecifiers,
  layerViolations,
  parseTs,
  ROOT,
  TF_FREE_ROOTS,
  tfLoaders,
  tsFiles,
} from "./architecture.ts";

const SOURCES = ["trainer", "audit", "cli", "mod.ts"];

/**
 * Known violations owned by another stream, each with the issue that
 * removes it. The tests fail when an entry is no longer needed, so the list
 * only shrinks.
 */
const KNOWN_LONG_FUNCTIONS: { at: string; why: string }[] = [{
  // The vision tower's compute is rewritten by the native-compute stream.
  at: "trainer/model/vision.ts:visionForward",
  why: "issue 13: the vision tower's compute (owned by the blas stream)",
}];

const MAX_TRAIN_LINES = 120;
const MAX_FUNCTION_LINES = 150;

const graph = await importGraph(await tsFiles(SOURCES));

Deno.test("architecture: no import cycles", () => {
  assert.deepEqual(findCycles(graph.edges), [], "import cycles");
});

Deno.test("architecture: cli/main.ts only dispatches; no module imports it (commands share cli/common.ts)", () => {
  const importers = [...graph.edges].filter(([, tos]) =>
    tos.includes("cli/main.ts")
  ).map(([from]) => from);
  assert.deepEqual(importers, []);
  assert.ok(
    graph.edges.get("cli/train.ts")!.includes("cli/common.ts"),
    "commands import cli/common.ts",
  );
});

Deno.test("architecture: no upward imports between trainer/ folders, nor from trainer/ into audit/ or cli/", () => {
  assert.deepEqual(layerViolations(graph.edges), []);
});

Deno.test("architecture: the audit, the CLI entry and its light commands never load TF.js", () => {
  const roots = [...graph.eager.keys()].filter((f) => f.startsWith("audit/"));
  assert.ok(roots.length > 10, `only ${roots.length} audit modules`);
  assert.deepEqual(tfLoaders(graph, TF_FREE_ROOTS), []);
});

Deno.test(`architecture: train() is under ${MAX_TRAIN_LINES} lines and no function in trainer/ exceeds ${MAX_FUNCTION_LINES}`, async () => {
  const sizes = [];
  for (const f of await tsFiles(["trainer"])) {
    const ast = parseTs(await Deno.readTextFile(join(ROOT, f)), f);
    sizes.push(...functionSizes(ast, f));
  }
  const train = sizes.find((s) =>
    s.file === "trainer/loop/train.ts" && s.name === "train"
  );
  assert.ok(train, "train() not found in trainer/loop/train.ts");
  assert.ok(
    train.lines < MAX_TRAIN_LINES,
    `train() has ${train.lines} lines (limit ${MAX_TRAIN_LINES})`,
  );
  const long = sizes.filter((s) => s.lines > MAX_FUNCTION_LINES);
  const known = KNOWN_LONG_FUNCTIONS.map((k) => k.at);
  assert.deepEqual(
    long.filter((s) => !known.includes(`${s.file}:${s.name}`)).map((s) =>
      `${s.file}:${s.line} ${s.name}: ${s.lines} lines`
    ),
    [],
  );
  const stale = KNOWN_LONG_FUNCTIONS.filter((k) =>
    !long.some((s) => `${s.file}:${s.name}` === k.at)
  );
  assert.deepEqual(
    stale.map((k) => k.at),
    [],
    "now short enough: remove them from KNOWN_LONG_FUNCTIONS",
  );
});

// The checks themselves, on deliberately broken inputs.

Deno.test("architecture checks catch a cycle, an upward import, a same-layer import, an unplaced folder and an eager TF.js load", () => {
  const edges = new Map<string, string[]>([
    ["trainer/model/a.ts", ["trainer/loop/train.ts"]], // model -> loop: upward
    ["trainer/loop/train.ts", ["trainer/model/a.ts"]], // and back: a cycle
    ["trainer/sft/x.ts", ["trainer/stage2/y.ts"]], // same layer
    ["trainer/stage2/y.ts", ["trainer/variant/contract.ts"]], // fine
    ["trainer/newfolder/z.ts", ["trainer/common/rng.ts"]], // not placed
    ["trainer/trace/t.ts", ["audit/trace/mod.ts"]], // trainer -> audit
    ["audit/trace/mod.ts", ["trainer/trace/schema.ts"]], // fine
  ]);
  // an eager path to TF.js is caught; a lazy import() or a type import is not one
  const g = {
    edges,
    eager: new Map([
      ["audit/a.ts", ["trainer/model/m.ts"]],
      ["trainer/model/m.ts", ["trainer/runtime.ts"]],
      ["audit/b.ts", []],
    ]),
    packages: new Map([["trainer/runtime.ts", ["@tensorflow/tfjs"]]]),
  };
  assert.deepEqual(tfLoaders(g, ["audit/"]), [
    "audit/a.ts reaches trainer/runtime.ts (@tensorflow/tfjs)",
  ]);
  assert.deepEqual(findCycles(edges), [[
    "trainer/loop/train.ts",
    "trainer/model/a.ts",
  ]]);
  const v = layerViolations(edges);
  assert.deepEqual(v.map((x) => x.split(":")[0]), [
    "trainer/model/a.ts -> trainer/loop/train.ts",
    "trainer/newfolder/z.ts -> trainer/common/rng.ts",
    "trainer/sft/x.ts -> trainer/stage2/y.ts",
    "trainer/trace/t.ts -> audit/trace/mod.ts",
  ]);
});

Deno.test("architecture helper reads every import form and measures functions", () => {
  const src = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    'export { c } from "./c.ts";',
    'export * from "./d.ts";',
    "export async function f() {",
    '  const m = await import("./e.ts");',
    '  type T = import("./g.ts").T;',
    "  return m;",
    "}",
    "const g = (x: number) =>",
    "  x + 1;",
  ].join("\n");
  const ast = parseTs(src, "x.ts");
  assert.deepEqual(imports(ast).map((i) => `${i.kind} ${i.spec}`), [
    "static ./a.ts",
    "type ../b.ts",
    "static ./c.ts",
    "static ./d.ts",
    "dynamic ./e.ts",
    "type ./g.ts",
  ]);
  assert.deepEqual(importSpecifiers(ast), [
    "./a.ts",
    "../b.ts",
    "./c.ts",
    "./d.ts",
    "./e.ts",
    "./g.ts",
  ]);
  assert.deepEqual(
    functionSizes(ast, "x.ts").map((s) => [s.name, s.lines]),
    [["f", 5], ["g", 2]],
  );
});
