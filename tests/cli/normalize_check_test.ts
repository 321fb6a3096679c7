import assert from "node:assert/strict";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

async function stage2(cwd: string, ...args: string[]) {
  const env: Record<string, string> = { ...Deno.env.toObject(), NO_COLOR: "1" };
  delete env.INIT_CWD; // paths resolve against `cwd`, as under pre-commit
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, "normalize-check", ...args],
    cwd,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

Deno.test("cli normalize-check: exit codes, file lists and formats", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nc-cli-" });
  try {
    await Deno.writeTextFile(
      `${dir}/ok.py`,
      "def f(k, w):\n    return k / 999 * (w - 1)\n",
    );
    await Deno.writeTextFile(
      `${dir}/bad.md`,
      "# Notes\n\nBoxes are normalized by `/1000`.\n",
    );
    await Deno.mkdir(`${dir}/fixtures`);
    await Deno.writeTextFile(
      `${dir}/fixtures/x.py`,
      "def f(box):\n    return [v / 1000 for v in box]\n",
    );
    await Deno.writeTextFile(
      `${dir}/.normalize-check.json`,
      '{"exclude": ["fixtures/"]}',
    );

    // A pre-commit style file list, relative to the working directory.
    const clean = await stage2(dir, "ok.py");
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, "");

    const text = await stage2(dir, "--verbose");
    assert.equal(text.code, 1, text.stderr);
    assert.match(text.stdout, /^bad\.md:3:26: prose-1000: .*\n.*\n {4}fix: /);
    assert.match(
      text.stderr,
      /excluded: fixtures\/ \(config pattern 'fixtures\/'\)/,
    );
    assert.match(text.stderr, /1 finding in 1 file/);

    const json = await stage2(dir, "--format", "json", "bad.md", "ok.py");
    assert.equal(json.code, 1);
    const list = JSON.parse(json.stdout);
    assert.deepEqual(
      list.map((f: { path: string; line: number }) => [f.path, f.line]),
      [["bad.md", 3]],
    );

    // --no-config checks the excluded fixtures too.
    const all = await stage2(dir, "--no-config", "--format", "json");
    const paths = JSON.parse(all.stdout).map((f: { path: string }) => f.path);
    assert.deepEqual(paths, ["bad.md", "fixtures/x.py"]);

    const missing = await stage2(dir, "nope.py");
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    assert.match(
      missing.stderr,
      /^stage2: normalize-check: no such file or folder: .*nope\.py/,
    );

    // Bad input is exit 2 with one line naming the path, never a hang.
    const noRoot = await stage2(dir, "--root", "nowhere", "ok.py");
    assert.equal(noRoot.code, 2);
    assert.match(
      noRoot.stderr,
      /^stage2: normalize-check: root folder does not exist: .*\/nowhere\n$/,
    );
    const mk = await new Deno.Command("mkfifo", { args: [`${dir}/pipe.py`] })
      .output();
    assert.ok(mk.success, "mkfifo");
    const fifo = await stage2(dir, "pipe.py");
    assert.equal(fifo.code, 2);
    assert.match(
      fifo.stderr,
      /^stage2: normalize-check: .*\/pipe\.py: not a regular file or folder .*\n$/,
    );
    await Deno.remove(`${dir}/pipe.py`);

    const format = await stage2(dir, "--format", "xml");
    assert.equal(format.code, 2);
    assert.match(format.stderr, /unknown --format 'xml'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli normalize-check: a folder named inside a gitignored directory of a git repo is checked", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nc-git-" });
  try {
    const git = await new Deno.Command("git", {
      args: ["init", "-q"],
      cwd: dir,
    }).output();
    assert.ok(git.success, "git init");
    await Deno.writeTextFile(`${dir}/.gitignore`, "runs/\n");
    await Deno.mkdir(`${dir}/runs/exp1`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/runs/exp1/plot.py`,
      "def f(box):\n    return [v / 1000 for v in box]\n",
    );
    // The whole repository: runs/ is left out, and --verbose says by what.
    const whole = await stage2(dir, "--verbose");
    assert.equal(whole.code, 0, whole.stderr);
    assert.match(
      whole.stderr,
      /^gitignored: runs\/ \(rule 'runs\/' in \.gitignore:1\)$/m,
    );
    // Named explicitly, the ignored folder is checked.
    const named = await stage2(dir, "runs/exp1", "--verbose");
    assert.equal(named.code, 1, named.stderr);
    assert.match(named.stdout, /^runs\/exp1\/plot\.py:2:13: decode-by-1000: /);
    assert.match(
      named.stderr,
      /checked although ignored: runs\/exp1\/ \(named explicitly; rule 'runs\/' in \.gitignore:1\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
