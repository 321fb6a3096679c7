import assert from "node:assert/strict";

interface GraphModule {
  specifier: string;
  dependencies?: { isDynamic?: boolean; code?: { specifier: string } }[];
}

const ROOT = new URL("../../", import.meta.url).href;

/** The repo's module graph from `cli/main.ts`, dynamic imports included. */
async function graph(): Promise<Map<string, string[]>> {
  const main = new URL("cli/main.ts", ROOT).pathname;
  const res = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", main],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(res.success, new TextDecoder().decode(res.stderr));
  const g = JSON.parse(new TextDecoder().decode(res.stdout)) as {
    modules: GraphModule[];
  };
  const local = (s: string) =>
    s.startsWith(ROOT) && !s.includes("/node_modules/");
  const edges = new Map<string, string[]>();
  for (const m of g.modules) {
    if (!local(m.specifier)) continue;
    edges.set(
      m.specifier.slice(ROOT.length),
      (m.dependencies ?? []).flatMap((d) =>
        d.code && local(d.code.specifier)
          ? [d.code.specifier.slice(ROOT.length)]
          : []
      ),
    );
  }
  return edges;
}

/** Every import cycle (as a path) that passes through a module of `cli/`. */
function cliCycles(edges: Map<string, string[]>): string[] {
  const cycles: string[] = [];
  for (const start of [...edges.keys()].filter((m) => m.startsWith("cli/"))) {
    // depth-first search for a path back to `start`
    const seen = new Set<string>();
    const walk = (m: string, path: string[]) => {
      for (const d of edges.get(m) ?? []) {
        if (d === start) cycles.push([...path, d].join(" -> "));
        else if (!seen.has(d)) {
          seen.add(d);
          walk(d, [...path, d]);
        }
      }
    };
    walk(start, [start]);
  }
  return cycles;
}

Deno.test("CLI modules form no import cycle (dynamic imports included); commands import cli/common.ts, not main.ts", async () => {
  const edges = await graph();
  const commands = [...edges.keys()].filter((m) =>
    m.startsWith("cli/") && m !== "cli/main.ts" && m !== "cli/common.ts"
  );
  assert.ok(commands.includes("cli/train.ts"), "graph was read");
  assert.deepEqual(cliCycles(edges), []);
  for (const c of commands) {
    assert.ok(!edges.get(c)!.includes("cli/main.ts"), `${c} imports main.ts`);
  }
  // Negative control: the old shape (a command importing main.ts) is caught.
  const broken = new Map(edges);
  broken.set("cli/train.ts", [...edges.get("cli/train.ts")!, "cli/main.ts"]);
  assert.ok(cliCycles(broken).some((c) => c.startsWith("cli/main.ts")));
});
