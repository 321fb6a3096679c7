import assert from "node:assert/strict";
import {
  CheckError,
  checkPaths,
  formatFindings,
  summary,
  verboseLines,
  warnings,
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

Deno.test("check: a named folder inside a gitignored folder of the enclosing repo is checked", async () => {
  const dir = await tree({
    ".git/HEAD": "ref: refs/heads/main\n",
    ".gitignore": "# experiment outputs\nruns/\n*.gen.py\n",
    "runs/exp1/.gitignore": "scratch/\n",
    "runs/exp1/sub/bad.py": BAD_PY,
    "runs/exp1/sub/x.gen.py": BAD_PY,
    "runs/exp1/scratch/tmp.py": BAD_PY,
    "src/a.py": BAD_PY,
  });
  try {
    // Walking the repo leaves runs/ out and says which rule did it.
    const whole = await checkPaths({ root: dir, config: null });
    assert.deepEqual(whole.findings.map((f) => f.path), ["src/a.py"]);
    assert.deepEqual(whole.gitignored, [
      { path: "runs/", rule: "runs/", source: ".gitignore:2" },
    ]);
    assert.ok(
      verboseLines(whole).includes(
        "gitignored: runs/ (rule 'runs/' in .gitignore:2)",
      ),
    );
    // Named explicitly, the folder is checked; the .gitignore inside it
    // still applies, the rule that excluded the folder itself does not.
    const named = await checkPaths({
      root: dir,
      paths: [`${dir}/runs/exp1`],
      config: null,
    });
    assert.deepEqual(named.findings.map((f) => f.path), [
      "runs/exp1/sub/bad.py",
      "runs/exp1/sub/x.gen.py",
    ]);
    assert.deepEqual(named.overridden, [
      { path: "runs/exp1/", rule: "runs/", source: ".gitignore:2" },
    ]);
    assert.deepEqual(named.gitignored, [
      {
        path: "runs/exp1/scratch/",
        rule: "scratch/",
        source: "runs/exp1/.gitignore:1",
      },
    ]);
    // Run from inside the ignored folder (it is the root): still checked,
    // and the rule is found in the repository's .gitignore above the root.
    const inside = await checkPaths({ root: `${dir}/runs/exp1`, config: null });
    assert.deepEqual(inside.findings.map((f) => f.path), [
      "sub/bad.py",
      "sub/x.gen.py",
    ]);
    assert.equal(inside.overridden[0].source, `${dir}/.gitignore:2`);
    // Rules of the enclosing repository apply below a root in a subfolder.
    const src = await checkPaths({ root: `${dir}/src`, config: null });
    assert.deepEqual(src.findings.map((f) => f.path), ["a.py"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: a named folder of which ignore rules leave nothing gets a warning", async () => {
  const dir = await tree({
    "gen/.gitignore": "*\n",
    "gen/a.py": BAD_PY,
    "docs/notes.txt": "no checked file types here\n",
  });
  try {
    const r = await checkPaths({
      root: dir,
      paths: [`${dir}/gen`, `${dir}/docs`],
      config: null,
    });
    assert.deepEqual(r.findings, []);
    // docs/ holds nothing to check, which is no reason to warn.
    assert.deepEqual(warnings(r), [
      "normalize-check: warning: nothing checked in gen: ignore rules or excludes left out every file (--verbose lists them)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: binary and invalid JSON files are listed and counted, not silently dropped", async () => {
  const dir = await tree({
    "blob.py": "def f(box):\n    return [v / 1000 for v in box]\n\0\0\0",
    "broken.json": '{"coord_scale": 1000,\n',
    "ok.json": '{"a": 1}\n',
  });
  try {
    const r = await checkPaths({ root: dir, config: null });
    assert.deepEqual(r.skipped.map((s) => [s.path, s.kind]), [
      ["blob.py", "binary"],
      ["broken.json", "invalid-json"],
    ]);
    // A broken JSON file is still read leniently: its finding survives.
    assert.deepEqual(r.findings.map((f) => `${f.path}:${f.rule}`), [
      "broken.json:norm-param-1000",
    ]);
    assert.match(
      summary(r),
      /\(2 files checked, 1 parsed, 1 binary skipped, 1 not valid JSON\)$/,
    );
    const lines = verboseLines(r);
    assert.ok(
      lines.includes("skipped: blob.py (binary: NUL byte at offset 47)"),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => l.startsWith("not valid JSON: broken.json (")),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check: a missing root, a file as root and a FIFO are one-line errors", async () => {
  const dir = await tree({ "a.py": BAD_PY });
  try {
    await assert.rejects(
      () => checkPaths({ root: `${dir}/nope`, config: null }),
      /^CheckError: root folder does not exist: .*\/nope$/,
    );
    await assert.rejects(
      () => checkPaths({ root: `${dir}/a.py`, config: null }),
      /root is not a folder: .*\/a\.py$/,
    );
    const fifo = `${dir}/pipe.py`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success, "mkfifo");
    // Reading a FIFO blocks until a writer comes; it must be refused first.
    await assert.rejects(
      () => checkPaths({ root: dir, paths: [fifo], config: null }),
      /pipe\.py: not a regular file or folder/,
    );
    // In a walk it is listed, not read.
    const walked = await checkPaths({ root: dir, config: null });
    assert.deepEqual(walked.special, ["pipe.py"]);
    assert.equal(walked.findings.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
