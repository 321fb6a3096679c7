import assert from "node:assert/strict";
import {
  CheckError,
  checkPaths,
  formatFindings,
  verboseLines,
} from "../../../audit/normalize/mod.ts";

const BAD_PY = "def f(box):\n    return [v / 1000 for v in box]\n";

async function tree(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "nc-check-" });
  for (const [rel, text] of Object.entries(files)) {
    const path = `${dir}/${rel}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
  }
  return dir;
}

Deno.test("check: .gitignore files are honoured at every level", async () => {
  const dir = await tree({
    ".gitignore": "build/\n*.gen.py\n",
    "src/a.py": BAD_PY,
    "src/b.gen.py": BAD_PY,
    "build/c.py": BAD_PY,
    "src/sub/.gitignore": "local.py\n",
    "src/sub/local.py": BAD_PY,
    "src/sub/kept.py": BAD_PY,
  });
  try {
    const r = await checkPaths({ root: dir, config: null });
    assert.deepEqual(r.findings.map((f) => f.path), [
      "src/a.py",
      "src/sub/kept.py",
    ]);
    // A folder below the root still sees the root's .gitignore.
    const sub = await checkPaths({
      root: dir,
      paths: [`${dir}/src`],
      config: null,
    });
    assert.deepEqual(sub.findings.map((f) => f.path), [
      "src/a.py",
      "src/sub/kept.py",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: config excludes apply to walks and explicit files, and are reported", async () => {
  const dir = await tree({
    ".normalize-check.json": JSON.stringify({
      exclude: ["fixtures/", "legacy_*.py"],
    }),
    "fixtures/x.py": BAD_PY,
    "legacy_plot.py": BAD_PY,
    "main.py": BAD_PY,
  });
  try {
    const r = await checkPaths({ root: dir });
    assert.deepEqual(r.findings.map((f) => f.path), ["main.py"]);
    assert.deepEqual(r.excluded, [
      { path: "fixtures/", pattern: "fixtures/" },
      { path: "legacy_plot.py", pattern: "legacy_*.py" },
    ]);
    const lines = verboseLines(r);
    assert.ok(
      lines.includes("excluded: fixtures/ (config pattern 'fixtures/')"),
      lines.join("\n"),
    );
    // A pre-commit file list naming an excluded file still skips it.
    const explicit = await checkPaths({
      root: dir,
      paths: [`${dir}/legacy_plot.py`, `${dir}/main.py`],
    });
    assert.deepEqual(explicit.findings.map((f) => f.path), ["main.py"]);
    // A run from a subfolder finds the config above it, patterns unchanged.
    const below = await checkPaths({ root: `${dir}/fixtures` });
    assert.deepEqual(below.findings, []);
    assert.deepEqual(below.excluded, [{ path: "./", pattern: "fixtures/" }]);
    // Without the config everything is checked.
    const none = await checkPaths({ root: dir, config: null });
    assert.equal(none.findings.length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: explicit files bypass .gitignore; other types are listed as skipped", async () => {
  const dir = await tree({
    ".gitignore": "*.py\n",
    "a.py": BAD_PY,
    "notes.txt": "k/1000",
  });
  try {
    const r = await checkPaths({
      root: dir,
      paths: [`${dir}/a.py`, `${dir}/notes.txt`],
      config: null,
    });
    assert.deepEqual(r.findings.map((f) => `${f.path}:${f.line}:${f.column}`), [
      "a.py:2:13",
    ]);
    assert.deepEqual(r.unsupported, [`${dir}/notes.txt`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: bad config and missing paths are one-line errors", async () => {
  const dir = await tree({
    ".normalize-check.json": '{"exclude": ["a/"], "exlude": []}',
  });
  try {
    await assert.rejects(() => checkPaths({ root: dir }), (e) => {
      assert.ok(e instanceof CheckError);
      assert.match(e.message, /\.normalize-check\.json: .*exlude/);
      return true;
    });
    await assert.rejects(
      () => checkPaths({ root: dir, paths: [`${dir}/nope`], config: null }),
      /no such file or folder: .*\/nope/,
    );
    await assert.rejects(
      () => checkPaths({ root: dir, config: `${dir}/missing.json` }),
      /cannot read config/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: output formats carry path, line, column, rule and a fix", async () => {
  const dir = await tree({ "a.py": BAD_PY });
  try {
    const r = await checkPaths({ root: dir, config: null });
    const json = JSON.parse(formatFindings(r.findings, "json"));
    assert.deepEqual(Object.keys(json[0]), [
      "path",
      "line",
      "column",
      "rule",
      "message",
      "snippet",
      "fix",
    ]);
    assert.deepEqual(
      [json[0].path, json[0].line, json[0].column, json[0].rule],
      ["a.py", 2, 13, "decode-by-1000"],
    );
    assert.equal(json[0].snippet, "return [v / 1000 for v in box]");
    const text = formatFindings(r.findings, "text");
    assert.match(
      text,
      /^a\.py:2:13: decode-by-1000: .*\n {4}return .*\n {4}fix: decode bins as k \/ 999/,
    );
    const gh = formatFindings(r.findings, "github");
    assert.match(
      gh,
      /^::error file=a\.py,line=2,col=13,title=normalize-check decode-by-1000::/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: minified bundles are skipped and listed, sources are not", async () => {
  const bundle = `var box={x1:1};` + "a=1;".repeat(2000) + `f(box.x1*1000);\n`;
  const dir = await tree({
    "dist/app.min.js": "f(box.x1*1000);\n",
    "dist/app.js": bundle,
    "src/app.js": "export const f = (box) => box.x1 * 1000;\n",
  });
  try {
    const r = await checkPaths({ root: dir, config: null });
    assert.deepEqual(r.findings.map((f) => f.path), ["src/app.js"]);
    assert.deepEqual(r.minified.sort(), ["dist/app.js", "dist/app.min.js"]);
    assert.ok(
      verboseLines(r).includes("skipped: dist/app.min.js (minified bundle)"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
