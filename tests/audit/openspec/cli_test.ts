/** `stage2 validate-spec` as a user runs it: flags, exit codes, light imports. */
import assert from "node:assert/strict";

const MAIN = new URL("../../../cli/main.ts", import.meta.url).pathname;
const CORPUS =
  new URL("../../fixtures/openspec/corpus", import.meta.url).pathname;

async function stage2(args: string[]) {
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", MAIN, "validate-spec", ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: res.code,
    stdout: dec.decode(res.stdout),
    stderr: dec.decode(res.stderr),
  };
}

Deno.test("validate-spec CLI: verdicts, JSON and bad flags", async () => {
  const ok = await stage2([
    "add-valid",
    "--strict",
    "--no-interactive",
    "--root",
    CORPUS,
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, "Change 'add-valid' is valid\n");

  const bad = await stage2(["missing-scenario", "--json", "--root", CORPUS]);
  assert.equal(bad.code, 1);
  const report = JSON.parse(bad.stdout);
  assert.equal(report.items[0].valid, false);
  assert.equal(report.items[0].issues[0].line, 2);

  const typo = await stage2(["bogus", "--type", "module", "--root", CORPUS]);
  assert.equal(typo.code, 2);
  assert.equal(
    typo.stderr,
    "stage2: --type must be 'change' or 'spec', got 'module'\n",
  );

  const noDir = await stage2(["--all", "--root", `${CORPUS}/does-not-exist`]);
  assert.equal(noDir.code, 2);
  assert.match(
    noDir.stderr,
    /^stage2: --root .*does-not-exist: no such directory\n$/,
  );

  // A folder with no openspec/ at or above it: exit 2, naming that folder.
  const empty = await Deno.makeTempDir({ prefix: "vs-noroot-" });
  try {
    for (const args of [["--all"], ["some-item"], ["--all", "--json"]]) {
      const none = await stage2([...args, "--root", empty]);
      assert.equal(none.code, 2, none.stderr);
      assert.equal(none.stdout, "");
      assert.equal(
        none.stderr,
        `stage2: --root ${empty}: no OpenSpec root in ${empty} or above it (expected an openspec/ folder holding specs/ or changes/)\n`,
      );
    }
  } finally {
    await Deno.remove(empty);
  }
});

interface GraphModule {
  specifier: string;
  dependencies?: { isDynamic?: boolean; code?: { specifier: string } }[];
}

Deno.test("validate-spec never loads TF.js or trainer modules", async () => {
  // What `stage2 validate-spec` loads is the static closure of cli/main.ts
  // plus that of cli/validate_spec.ts (main.ts imports commands dynamically,
  // and only the one being run).
  const main = new URL("../../../cli/main.ts", import.meta.url).href;
  const cmd = new URL("../../../cli/validate_spec.ts", import.meta.url).href;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(main).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(res.success, new TextDecoder().decode(res.stderr));
  const graph = JSON.parse(new TextDecoder().decode(res.stdout)) as {
    modules: GraphModule[];
    redirects: Record<string, string>;
  };
  const bySpecifier = new Map(graph.modules.map((m) => [m.specifier, m]));
  const loaded = new Set<string>();
  const visit = (spec: string) => {
    const s = graph.redirects[spec] ?? spec;
    if (loaded.has(s)) return;
    loaded.add(s);
    for (const d of bySpecifier.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code) visit(d.code.specifier);
    }
  };
  visit(main);
  visit(cmd);
  assert.ok(
    [...loaded].some((s) => s.endsWith("/audit/openspec/mod.ts")),
    "graph was read",
  );
  assert.deepEqual(
    // trainer/errors.ts (the shared error taxonomy) imports nothing
    [...loaded].filter((s) =>
      /tfjs|\/trainer\/(?!errors\.ts$)|\/cli\/train/.test(s)
    ),
    [],
  );
  // Negative control: the same walk from the trainer runtime reaches TF.js.
  loaded.clear();
  visit(new URL("../../../trainer/runtime.ts", import.meta.url).href);
  assert.ok(
    [...loaded].some((s) => /tfjs/.test(s)),
    "walk reaches TF.js from trainer/runtime.ts",
  );
});
