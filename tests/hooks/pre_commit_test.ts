// normalize-check: ignore-file -- writes a user file with a deliberate /1000 decode
/**
 * The hooks as a user runs them: the real `pre-commit` tool in a temporary
 * user repository whose .pre-commit-config.yaml points at a hook repository
 * holding this working tree (copied and committed, so the test checks what
 * is being changed, not the last commit). normalize-check fails on a
 * `/1000` bin decode and names the line, passes after the fix; validate-spec
 * does the same on an openspec/ tree. The launcher's npx fallback (no Deno
 * on PATH) is exercised directly.
 *
 * Needs `pre-commit` (Debian: `apt-get install -y pre-commit`; .ci/run
 * installs it) and git. Without pre-commit the test is skipped with the
 * reason, except where STAGE2_REQUIRE_PRE_COMMIT=1 (CI) makes it a failure.
 */
import assert from "node:assert/strict";

const REPO = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

async function run(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<{ code: number; out: string }> {
  const res = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: res.code,
    out: dec.decode(res.stdout) + dec.decode(res.stderr),
  };
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    return (await run(cmd, ["--version"], { cwd: "/" })).code === 0;
  } catch {
    return false;
  }
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run("git", [
    "-c",
    "user.name=stage2 test",
    "-c",
    "user.email=stage2@example.invalid",
    "-c",
    "init.defaultBranch=main",
    "-c",
    "commit.gpgsign=false",
    ...args,
  ], { cwd });
  assert.equal(r.code, 0, `git ${args.join(" ")}: ${r.out}`);
  return r.out.trim();
}

/** A git repository holding the current working tree; returns its HEAD. */
async function hookRepo(dir: string): Promise<string> {
  const list = await run("git", [
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
  ], { cwd: REPO });
  assert.equal(list.code, 0, list.out);
  for (const rel of list.out.split("\0").filter(Boolean)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(`${REPO}/${rel}`);
    } catch {
      continue; // tracked but deleted in the working tree
    }
    if (!info.isFile) continue;
    const dest = `${dir}/${rel}`;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(`${REPO}/${rel}`, dest);
  }
  await git(dir, "init", "-q");
  await git(dir, "add", "-A");
  await git(dir, "commit", "-q", "-m", "working tree under test");
  return await git(dir, "rev-parse", "HEAD");
}

const BAD_PY = [
  "def to_pixels(box, width):",
  "    x1, y1, x2, y2 = box",
  "    return [k / 1000 * width for k in (x1, x2)]",
  "",
].join("\n");
const FIXED_PY = BAD_PY.replace("k / 1000 * width", "k / 999 * (width - 1)");

const SPEC = (scenario: boolean) =>
  [
    "# demo Specification",
    "",
    "## Purpose",
    "",
    "Decoding coordinate bins in the demo viewer, for the hook test.",
    "",
    "## Requirements",
    "",
    "### Requirement: Decode",
    "",
    "The viewer SHALL decode bin k as `k / 999`.",
    "",
    ...(scenario
      ? [
        "#### Scenario: Last bin",
        "",
        "- **WHEN** bin 999 is decoded",
        "- **THEN** the result is 1.0",
        "",
      ]
      : []),
  ].join("\n");

const havePreCommit = await onPath("pre-commit");
const required = Deno.env.get("STAGE2_REQUIRE_PRE_COMMIT") === "1";
if (!havePreCommit && !required) {
  console.warn(
    "SKIPPED tests/hooks/pre_commit_test.ts: `pre-commit` is not on PATH " +
      "(apt-get install -y pre-commit; CI installs it and sets STAGE2_REQUIRE_PRE_COMMIT=1)",
  );
}

Deno.test(
  "pre-commit: the hooks run from a user's repository (real pre-commit, current tree)",
  { ignore: !havePreCommit && !required },
  async (t) => {
    assert.ok(havePreCommit, "pre-commit is required here but not on PATH");
    const tmp = await Deno.makeTempDir({ prefix: "stage2-hooks-" });
    try {
      const rev = await hookRepo(`${tmp}/hooks`);
      const user = `${tmp}/user`;
      await Deno.mkdir(`${user}/src`, { recursive: true });
      await git(user, "init", "-q");
      await Deno.writeTextFile(
        `${user}/.pre-commit-config.yaml`,
        [
          "repos:",
          `  - repo: ${tmp}/hooks`,
          `    rev: ${rev}`,
          "    hooks:",
          "      - id: stage2-normalize-check",
          "      - id: stage2-validate-spec",
          "",
        ].join("\n"),
      );
      const env = { PRE_COMMIT_HOME: `${tmp}/cache` };
      const preCommit = async () => {
        await git(user, "add", "-A");
        return await run("pre-commit", [
          "run",
          "--all-files",
          "--color",
          "never",
        ], { cwd: user, env });
      };

      await t.step(
        "normalize-check fails on a /1000 decode, naming the line",
        async () => {
          await Deno.writeTextFile(`${user}/src/viz.py`, BAD_PY);
          const r = await preCommit();
          assert.equal(r.code, 1, r.out);
          assert.match(r.out, /stage2 normalize-check\.+Failed/);
          assert.match(r.out, /src\/viz\.py:3:\d+: decode-by-1000: /);
        },
      );

      await t.step("and passes once the decode is k/999", async () => {
        await Deno.writeTextFile(`${user}/src/viz.py`, FIXED_PY);
        const r = await preCommit();
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /stage2 normalize-check\.+Passed/);
        // No openspec/ files yet: the spec hook has nothing to run on.
        assert.match(
          r.out,
          /stage2 validate-spec --all --strict\.+\(no files to check\)Skipped/,
        );
      });

      await t.step(
        "validate-spec fails on an invalid spec and passes when fixed",
        async () => {
          await Deno.mkdir(`${user}/openspec/specs/demo`, { recursive: true });
          await Deno.mkdir(`${user}/openspec/changes`, { recursive: true });
          await Deno.writeTextFile(
            `${user}/openspec/specs/demo/spec.md`,
            SPEC(false),
          );
          const bad = await preCommit();
          assert.equal(bad.code, 1, bad.out);
          assert.match(bad.out, /stage2 validate-spec --all --strict\.+Failed/);
          assert.match(bad.out, /demo/);
          assert.match(bad.out, /scenario/i);

          await Deno.writeTextFile(
            `${user}/openspec/specs/demo/spec.md`,
            SPEC(true),
          );
          const good = await preCommit();
          assert.equal(good.code, 0, good.out);
          assert.match(
            good.out,
            /stage2 validate-spec --all --strict\.+Passed/,
          );
        },
      );
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
);
