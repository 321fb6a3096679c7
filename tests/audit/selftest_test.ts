/**
 * The self-test matrix, as `stage2 audit --selftest` runs it: every trainer
 * fault injected into a tiny real Stage-2 run is caught by the invariant
 * that names it, every probe fault by its probe, every damage to a run
 * folder by its completeness invariant, and the clean run passes (probes
 * included). One process, one fixture: a few seconds.
 */
import assert from "node:assert/strict";
import {
  DAMAGE,
  formatSelftest,
  PROBE_FAULTS,
  runSelftest,
  type SelftestReport,
  TRACE_FAULTS,
  uncoveredFaults,
} from "../../audit/selftest.ts";
import { runCli } from "../cli/_run.ts";
import { selftestRunner } from "../../trainer/selfcheck/mod.ts";
import { activeFault } from "../../trainer/common/faults.ts";

/**
 * Exactly what each trainer fault makes the audit report (sorted). The
 * first block are the bugs the audit passed before it observed: only their
 * own invariant fires. The faults that crash the run add what a crash
 * leaves (an unfinished pass sequence, no end record, steps missing).
 * Eval rollouts at every step, the non-finite guard and the run lock are on
 * in these runs, so a change to any of them that masked a fault or added a
 * finding fails here.
 */
const CRASH = ["pass-sequence", "run-finished", "steps-cover-run"];
const EXPECTED_FIRED: Record<string, string[]> = {
  "softctx-logits-at-p": ["causal-shift"],
  "softctx-stale-base": ["fresh-base-embedding"],
  "softctx-add": ["softctx-replace"],
  "softctx-drop-object": ["softctx-applied"],
  "attention-ignores-segments": ["attention-segments"],
  "rollout-seed-mismatch": ["generation-seeds"],
  "skip-rollouts": ["rollouts-ran"],
  "row0-no-restart": ["row0-segments"],
  "early-passes-on-tape": ["grad-last-pass"],
  "schedule-off-by-one": ["schedule"],
  "seed-formula-wrong": ["seed-formula"],
  "n-softctx-off-by-one": ["config-consistency"],
  "position-ids-3-rows": [
    "attention-segments",
    "packing-position-ids",
    "row0-segments",
  ],
  "crash-after-first-forward": CRASH,
  "cache-on": ["cache-off", ...CRASH],
  "sliced-logits": ["helper-keys", "logits-coverage", ...CRASH],
  "both-inputs": [
    "channel-a-inputs-embeds",
    "input-exclusivity",
    "logits-coverage",
    "packing-position-ids",
    "row0-segments",
    ...CRASH,
  ],
};

/** Exactly what each damage to the clean run folder makes the audit report. */
const EXPECTED_DAMAGE: Record<string, string[]> = {
  "trace cut at a line boundary (after step 0)": [
    "run-finished",
    "steps-cover-run",
  ],
  "trace cut mid-line": ["run-finished", "steps-cover-run"],
  "run_complete.json missing": ["run-finished"],
  "config.yaml missing": ["config-present"],
  "a corrupt line in the middle of the trace": ["exit 2 (corrupt trace)"],
};

const sorted = (xs: string[]) => [...xs].sort();

/** `stage2 ...args` in process (exit code reset afterwards). */
async function cli(args: string[]) {
  try {
    return await runCli(args);
  } finally {
    Deno.exitCode = 0;
  }
}

Deno.test(
  "stage2 audit --selftest: every injected fault is caught by the invariant that names it; the clean run passes, with --probe too",
  // the runs write files and may leave worker handles to the wasm backend
  { sanitizeResources: false, sanitizeOps: false },
  async () => {
    assert.deepEqual(uncoveredFaults(), [], "faults missing from the matrix");
    const dir = await Deno.makeTempDir({ prefix: "stage2-selftest-" });
    const res = await cli(["audit", "--selftest", "--json", "--keep", dir]);
    assert.equal(res.code, 0, res.out);
    const rep = JSON.parse(res.out) as SelftestReport;
    const rows = rep.rows;
    assert.equal(activeFault(), null, "the fault switch is reset");
    const by = (kind: string, name: string) =>
      rows.find((r) => r.kind === kind && r.name === name)!;
    assert.deepEqual(by("clean", "clean run").fired, []);
    assert.equal(by("clean", "clean run").verdict, "PASS");
    assert.deepEqual(by("clean", "clean run, probes").fired, []);
    assert.deepEqual(
      sorted(Object.keys(EXPECTED_FIRED)),
      sorted(TRACE_FAULTS.map((f) => f.fault)),
    );
    for (const { fault, invariant } of TRACE_FAULTS) {
      const r = by("trace", fault);
      assert.ok(r.fired.includes(invariant), `${fault}: ${r.fired}`);
      assert.deepEqual(sorted(r.fired), sorted(EXPECTED_FIRED[fault]), fault);
      assert.notEqual(r.verdict, "PASS");
      // only the faults that crash the run report what a crash leaves
      assert.equal(r.crashed !== null, r.fired.includes("run-finished"), fault);
    }
    // a crashed run is never PASS: the crash itself is what is reported
    assert.equal(by("trace", "crash-after-first-forward").verdict, "FAIL");
    for (const { fault, probe } of PROBE_FAULTS) {
      assert.deepEqual(by("probe", fault).fired, [probe], fault);
    }
    for (const d of DAMAGE) {
      const r = by("damage", d.damage);
      assert.ok(r.fired.includes(d.invariant), `${d.damage}: ${r.fired}`);
      assert.deepEqual(r.fired, EXPECTED_DAMAGE[d.damage], d.damage);
      if (d.invariant === "exit 2 (corrupt trace)") {
        assert.match(r.verdict, /trace\.jsonl:3: not valid JSON/);
        assert.equal(r.verdict.split("\n").length, 1);
      } else assert.equal(r.verdict, "INCOMPLETE", d.damage);
    }
    assert.equal(rep.ok, true, formatSelftest(rep));
    assert.equal(
      rows.length,
      2 + TRACE_FAULTS.length + PROBE_FAULTS.length + DAMAGE.length,
    );

    // the kept clean run, audited with probes through the CLI
    const clean = `${dir}/run-clean`;
    // it ran greedy eval rollouts at every step, and none of them is in the
    // trace: its only generation call is the Channel-B step's (step 1)
    const evals = (await Deno.readTextFile(`${clean}/metrics.jsonl`))
      .trim().split("\n").map((l) => JSON.parse(l))
      .filter((m) => m.kind === "eval" && "eval/f1" in m);
    assert.deepEqual(evals.map((m) => m.step), [0, 1, 2]);
    const gens = (await Deno.readTextFile(`${clean}/trace.jsonl`))
      .trim().split("\n").map((l) => JSON.parse(l))
      .filter((r) => r.kind === "generate");
    assert.deepEqual(
      gens.map((g) => [g.globalStep, g.purpose, g.channel]),
      [[1, "rollout", "B"]],
    );
    const p = await cli(["audit", "--run", clean, "--probe"]);
    assert.equal(p.code, 0, p.out + p.err);
    assert.match(p.out, /^PASS: all \d+ invariants hold$/m);
    for (
      const name of [
        "segment-isolation",
        "kv-cache",
        "embeds-path",
        "soft-rows",
      ]
    ) {
      assert.match(p.out, new RegExp(`^PASS ${name} `, "m"));
    }
    assert.match(p.out, /^PASS: all probes hold$/m);
    // a folder whose trace was cut fails the audit; the probes still run
    const cut = `${dir}/damaged-${
      2 + TRACE_FAULTS.length + PROBE_FAULTS.length
    }`;
    const q = await cli(["audit", "--run", cut, "--probe", "--json"]);
    assert.equal(q.code, 1);
    const j = JSON.parse(q.out);
    assert.equal(j.audit.verdict, "INCOMPLETE");
    assert.equal(j.probes.ok, true);
    // without a replay batch, --probe is bad input: exit 2, one line
    await Deno.remove(`${clean}/probe_batch.json`);
    const r = await cli(["audit", "--run", clean, "--probe"]);
    assert.equal(r.code, 2);
    assert.match(
      r.err,
      /^stage2: --probe: .*probe_batch\.json does not exist/,
    );
    assert.equal(r.err.split("\n").length, 1);
    // a used --keep folder is refused up front: its old runs would be
    // audited in place of runs that training refuses to write there
    const again = await cli(["audit", "--selftest", "--keep", dir]);
    assert.equal(again.code, 2);
    assert.match(again.err, /^stage2: --keep .* is not empty/);
    assert.equal(again.err.split("\n").length, 1);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "selftest: a fault the audit misses fails the self-test",
  { sanitizeResources: false, sanitizeOps: false },
  async () => {
    // a runner whose "fault" runs are all clean: nothing is caught
    const real = selftestRunner();
    const dir = await Deno.makeTempDir({ prefix: "stage2-selftest-miss-" });
    const rep = await runSelftest({
      prepare: real.prepare,
      run: (_fault, runDir) => real.run(null, runDir),
      probe: (runDir) => real.probe(runDir, null),
    }, dir);
    assert.equal(rep.ok, false);
    const missed = rep.rows.filter((r) => !r.caught).map((r) => r.kind);
    assert.equal(
      missed.filter((k) => k === "trace").length,
      TRACE_FAULTS.length,
    );
    assert.equal(
      missed.filter((k) => k === "probe").length,
      PROBE_FAULTS.length,
    );
    assert.match(
      formatSelftest(rep),
      /^MISS trace softctx-add -> softctx-replace NOT caught/m,
    );
    assert.match(
      formatSelftest(rep),
      /selftest FAIL: \d+ row\(s\) not as expected$/,
    );
    await Deno.remove(dir, { recursive: true });
  },
);
