import assert from "node:assert/strict";
import { main } from "../../../cli/main.ts";
import {
  type ForwardRecord,
  TRACE_VERSION,
} from "../../../trainer/trace/schema.ts";
import type { TraceLine } from "../../../trainer/trace/schema.ts";
import {
  buildCleanTrace,
  find,
  isForward,
  writeRunFolder,
} from "./synthetic.ts";

/** Runs `stage2 ...args`, capturing stdout/stderr lines and the exit code. */
async function run(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
    Deno.exitCode = 0;
  }
}

/** A run folder with the trace (records, or raw text), config.yaml and run_complete.json. */
async function runDir(trace: TraceLine[] | string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-audit-" });
  if (typeof trace === "string") {
    await Deno.writeTextFile(`${dir}/trace.jsonl`, trace);
  } else await writeRunFolder(dir, trace);
  return dir;
}

Deno.test("cli audit: clean run -> PASS lines, exit 0", async () => {
  const dir = await runDir(buildCleanTrace());
  const r = await run(["audit", "--run", dir]);
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /^PASS cache-off +\d+ checked$/m);
  assert.doesNotMatch(r.out, /FAIL/);
  assert.match(r.out, /^PASS: all \d+ invariants hold$/m);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli audit: violations -> FAIL line, trace.jsonl:LINE entries, exit 1", async () => {
  const recs = buildCleanTrace();
  const i = find(recs, (r) => isForward(r, { channel: "A", pass: 1 }));
  (recs[i] as ForwardRecord).useCache = true;
  const dir = await runDir(recs);
  const r = await run(["audit", "--run", dir]);
  assert.equal(r.code, 1);
  assert.match(r.out, /^FAIL cache-off +1 of \d+ violate$/m);
  assert.match(
    r.out,
    new RegExp(`^trace\\.jsonl:${i + 1} cache-off: .*useCache is true`, "m"),
  );
  const j = await run(["audit", "--run", dir, "--json"]);
  assert.equal(j.code, 1);
  const report = JSON.parse(j.out);
  assert.equal(report.ok, false);
  assert.deepEqual(report.violations.map((v: { line: number }) => v.line), [
    i + 1,
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli audit: --json on a clean run is machine-readable", async () => {
  const dir = await runDir(buildCleanTrace({ steps: 2 }));
  const r = await run(["audit", "--run", dir, "--json"]);
  assert.equal(r.code, 0);
  const report = JSON.parse(r.out);
  assert.equal(report.ok, true);
  assert.equal(report.records.steps, 2);
  assert.ok(
    report.invariants.every((i: { violations: number }) => i.violations === 0),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli audit: missing run, missing trace, malformed trace -> exit 2, one line", async () => {
  const missing = await run(["audit", "--run", "/nonexistent/run-dir"]);
  assert.equal(missing.code, 2);
  assert.match(
    missing.err,
    /^stage2: cannot read run \/nonexistent\/run-dir: no such folder$/,
  );
  const empty = await Deno.makeTempDir();
  const noTrace = await run(["audit", "--run", empty]);
  assert.equal(noTrace.code, 2);
  assert.match(noTrace.err, /trace\.jsonl does not exist.*training\.trace/);
  await Deno.remove(empty);
  const dir = await runDir(
    `{"kind":"run","version":${TRACE_VERSION},"level":"full","variant":"sft","detailSteps":null}\n{oops\n`,
  );
  const bad = await run(["audit", "--run", dir]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /trace\.jsonl:2: not valid JSON/);
  assert.equal(bad.err.split("\n").length, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli audit: --run (or --selftest) is required; --selftest takes no --run", async () => {
  const r = await run(["audit"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /give --run DIR \(or --selftest\)/);
  const both = await run(["audit", "--selftest", "--run", "x"]);
  assert.equal(both.code, 2);
});

Deno.test("cli audit: committed fixtures (summary-level clean, broken)", async () => {
  const base = new URL("../../fixtures/audit/", import.meta.url).pathname;
  const clean = await run(["audit", "--run", `${base}clean_summary`]);
  assert.equal(clean.code, 0, clean.out);
  const broken = await run(["audit", "--run", `${base}broken_summary`]);
  assert.equal(broken.code, 1);
  assert.match(broken.out, /^FAIL attention-segments/m);
  assert.match(broken.out, /^FAIL: \d+ violation\(s\) of 1 invariant\(s\)$/m);
});

Deno.test("cli audit: an unfinished or cut-short run is INCOMPLETE (exit 1), never PASS", async () => {
  const recs = buildCleanTrace();
  // cut exactly at a line boundary, as a crash between two writes leaves it
  const cut = await runDir(
    recs.slice(0, find(recs, (r) => r.kind === "step") + 1),
  );
  const a = await run(["audit", "--run", cut]);
  assert.equal(a.code, 1);
  assert.match(a.out, /^INCOMPLETE: /m);
  assert.match(a.out, /^FAIL run-finished/m);
  assert.match(
    a.out,
    /run-finished: the run did not finish: the trace has no end record/,
  );
  // cut mid-line: incomplete too, not a corrupt trace
  const text = await Deno.readTextFile(`${cut}/trace.jsonl`);
  await Deno.writeTextFile(`${cut}/trace.jsonl`, text.slice(0, -25));
  const b = await run(["audit", "--run", cut]);
  assert.equal(b.code, 1, b.err);
  assert.match(b.out, /cut mid-write/);
  // a finished trace in a folder without config.yaml
  const full = await runDir(recs);
  await Deno.remove(`${full}/config.yaml`);
  const c = await run(["audit", "--run", full]);
  assert.equal(c.code, 1);
  assert.match(c.out, /^FAIL config-present +1 of 1 violate$/m);
  assert.match(c.out, /^INCOMPLETE: /m);
  const j = JSON.parse((await run(["audit", "--run", full, "--json"])).out);
  assert.equal(j.verdict, "INCOMPLETE");
  assert.equal(j.ok, false);
  for (const d of [cut, full]) await Deno.remove(d, { recursive: true });
});

Deno.test("cli audit: works as the real entry point (subprocess)", async () => {
  const root = new URL("../../../", import.meta.url).pathname;
  const fixture = `${root}tests/fixtures/audit/broken_summary`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-prompt",
      `${root}cli/main.ts`,
      "audit",
      "--run",
      fixture,
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 1, new TextDecoder().decode(out.stderr));
  assert.match(text, /^trace\.jsonl:\d+ attention-segments: /m);
});

Deno.test("audit core never pulls in TF.js (static import graph)", async () => {
  const root = new URL("../../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${root}audit/trace/mod.ts`],
    cwd: root,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(out.code, 0);
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const specs: string[] = info.modules.map((m: { specifier: string }) =>
    m.specifier
  );
  assert.ok(specs.some((s) => s.endsWith("/audit/trace/mod.ts")));
  assert.deepEqual(specs.filter((s) => /tensorflow|tfjs/.test(s)), []);
});
