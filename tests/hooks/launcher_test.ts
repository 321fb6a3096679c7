// normalize-check: ignore-file -- writes a user file with a deliberate /1000 decode
/**
 * bin/stage2, the hooks' launcher, as a user's machine runs it: from any
 * folder, unaffected by a deno.json there, with Deno on PATH or, failing
 * that, Deno from npm through npx; with neither, one clear line and exit 2.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const LAUNCHER = `${ROOT}/bin/stage2`;

async function launch(cwd: string, path: string, ...args: string[]) {
  const res = await new Deno.Command("/bin/sh", {
    args: [LAUNCHER, ...args],
    cwd,
    clearEnv: true,
    env: { PATH: path, HOME: Deno.env.get("HOME") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: res.code,
    out: dec.decode(res.stdout),
    err: dec.decode(res.stderr),
  };
}

async function has(dir: string, name: string): Promise<boolean> {
  try {
    return (await Deno.stat(`${dir}/${name}`)).isFile;
  } catch {
    return false;
  }
}

/** PATH entries without a `deno` in them. */
async function pathWithoutDeno(): Promise<string[]> {
  const out: string[] = [];
  for (const d of (Deno.env.get("PATH") ?? "").split(":")) {
    if (d && !(await has(d, "deno"))) out.push(d);
  }
  return out;
}

async function userRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-launcher-" });
  await Deno.writeTextFile(
    `${dir}/viz.py`,
    "def f(box):\n    return [v / 1000 for v in box]\n",
  );
  // A user's own Deno project must not leak into the hook's resolution.
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({ imports: { commander: "npm:does-not-exist@0.0.0" } }),
  );
  return dir;
}

Deno.test("launcher: runs from a user's folder with Deno on PATH, relative paths resolve there", async () => {
  const dir = await userRepo();
  try {
    const r = await launch(
      dir,
      Deno.env.get("PATH") ?? "",
      "normalize-check",
      "viz.py",
    );
    assert.equal(r.code, 1, r.err);
    assert.match(r.out, /^viz\.py:2:13: decode-by-1000: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const npxPath = await pathWithoutDeno();
const haveNpx = (await Promise.all(npxPath.map((d) => has(d, "npx"))))
  .some(Boolean);
if (!haveNpx) {
  console.warn(
    "SKIPPED launcher npx fallback: no `npx` on PATH outside Deno's folder",
  );
}

Deno.test({
  name: "launcher: without Deno on PATH it starts Deno from npm via npx",
  ignore: !haveNpx,
  async fn() {
    const dir = await userRepo();
    try {
      const r = await launch(
        dir,
        npxPath.join(":"),
        "normalize-check",
        "viz.py",
      );
      assert.equal(r.code, 1, r.err);
      assert.match(r.out, /^viz\.py:2:13: decode-by-1000: /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("launcher: with neither Deno nor npx, one line and exit 2", async () => {
  const bin = await Deno.makeTempDir({ prefix: "stage2-nopath-" });
  try {
    for (const tool of ["dirname"]) {
      for (const d of ["/usr/bin", "/bin"]) {
        if (await has(d, tool)) {
          await Deno.symlink(`${d}/${tool}`, `${bin}/${tool}`);
          break;
        }
      }
    }
    const r = await launch(bin, bin, "normalize-check", ".");
    assert.equal(r.code, 2);
    assert.equal(
      r.err,
      "stage2: needs Deno 2 (deno) or Node.js (npx) on PATH\n",
    );
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});
