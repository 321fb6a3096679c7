/**
 * bin/deno.json (the hooks' Deno config) stays in step with the project:
 * the same pins as deno.json, and every package the light commands load
 * (normalize-check, validate-spec and their lazily imported parsers) is in
 * it, so the hooks never fail to resolve an import in a user's repository.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

interface Dep {
  specifier: string;
  isDynamic?: boolean;
  code?: { specifier?: string; error?: string };
}
interface Module {
  specifier: string;
  dependencies?: Dep[];
}

Deno.test("hook config: pins equal deno.json's", async () => {
  const root = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const hook = JSON.parse(await Deno.readTextFile(`${ROOT}/bin/deno.json`));
  for (const [name, spec] of Object.entries(hook.imports)) {
    assert.equal(spec, root.imports[name], `bin/deno.json pins ${name}`);
  }
  assert.equal(hook.lock.frozen, true);
});

Deno.test("hook config: resolves everything normalize-check and validate-spec load", async () => {
  const res = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      "--config",
      `${ROOT}/bin/deno.json`,
      `${ROOT}/cli/normalize_check.ts`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(res.success, new TextDecoder().decode(res.stderr));
  const graph = JSON.parse(new TextDecoder().decode(res.stdout)) as {
    modules: Module[];
    redirects: Record<string, string>;
  };
  const bySpec = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const problems: string[] = [];
  // Static imports from the command modules; dynamic ones only inside
  // audit/ (the parsers load on first use). cli/main.ts imports every
  // command dynamically, and only the one being run is loaded.
  const visit = (spec: string) => {
    const s = graph.redirects[spec] ?? spec;
    if (seen.has(s)) return;
    seen.add(s);
    for (const d of bySpec.get(s)?.dependencies ?? []) {
      // (relative to the repository: its own folder may be named "audit")
      const rel = s.replace(`file://${ROOT}/`, "");
      if (d.isDynamic && !rel.startsWith("audit/")) continue;
      if (d.code?.error) problems.push(`${s}: ${d.code.error}`);
      else if (d.code?.specifier) visit(d.code.specifier);
    }
  };
  for (const cmd of ["main", "normalize_check", "validate_spec"]) {
    visit(`file://${ROOT}/cli/${cmd}.ts`);
  }
  assert.ok(
    [...seen].some((s) => s.endsWith("/audit/normalize/python.ts")),
    "the walk reached the lazily loaded parsers",
  );
  assert.deepEqual(problems, []);
});
