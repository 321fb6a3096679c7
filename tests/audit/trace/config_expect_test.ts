import assert from "node:assert/strict";
import { stringify } from "yaml";
import {
  ConfigExpectError,
  expectFromConfig,
  readConfigExpect,
} from "../../../audit/trace/config_expect.ts";
import { auditRun, RunReadError } from "../../../audit/trace/mod.ts";
import type { ForwardRecord } from "../../../trainer/trace/schema.ts";
import { resolveConfigObject } from "../../../trainer/config/mod.ts";
import {
  buildCleanTrace,
  find,
  isForward,
  N_PASSES,
  PATTERN,
  SEED,
  toText,
  WINDOW,
} from "./synthetic.ts";

/** The resolved-config keys the audit reads, as trainer/config writes them. */
function resolved(over: Record<string, unknown> = {}) {
  return {
    training: { seed: SEED, gradient_accumulation_steps: WINDOW },
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: { schedule: { pattern: PATTERN }, n_softctx_iter: N_PASSES },
        rollout_matching: { rollout_buffer: { enabled: false, m_steps: 1 } },
      },
    },
    ...over,
  };
}

Deno.test("expectFromConfig: reads pattern, passes, window, seed, buffer", async () => {
  assert.deepEqual(expectFromConfig(await resolveConfigObject(resolved())), {
    pattern: PATTERN,
    nSoftctxIter: N_PASSES,
    gradientAccumulationSteps: WINDOW,
    trainingSeed: SEED,
    maxSteps: 100,
    rolloutBuffer: { enabled: false, mSteps: 1 },
  });
  const sft = expectFromConfig(
    await resolveConfigObject({
      training: { seed: 1, gradient_accumulation_steps: 4 },
      custom: { trainer_variant: "sft" },
    }),
  );
  assert.deepEqual(sft, {
    pattern: null,
    nSoftctxIter: null,
    gradientAccumulationSteps: 4,
    trainingSeed: 1,
    maxSteps: 100,
  });
});

Deno.test("readConfigExpect: a wrong key is an error naming file, key and line", async () => {
  const bad = resolved();
  (bad.training as Record<string, unknown>).gradient_accumulation_steps = "2";
  const dir = await runWith("", stringify(bad));
  await assert.rejects(
    () => readConfigExpect(dir),
    (e: unknown) =>
      e instanceof ConfigExpectError &&
      /^training\.gradient_accumulation_steps must be an integer >= 1, got "2" \(.*\/config\.yaml:\d+\)$/
        .test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

/**
 * A finished run folder with `trace` and `config` (default: the resolved
 * config of the synthetic run).
 */
async function runWith(
  trace: string,
  config = stringify(resolved()),
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-audit-cfg-" });
  await Deno.writeTextFile(`${dir}/trace.jsonl`, trace);
  await Deno.writeTextFile(`${dir}/config.yaml`, config);
  const end = trace.split("\n").map((l) => l && JSON.parse(l))
    .findLast((r) => r?.kind === "end");
  if (end) {
    await Deno.writeTextFile(
      `${dir}/run_complete.json`,
      JSON.stringify({ global_step: end.globalStep }),
    );
  }
  return dir;
}

/** The clean trace without header expectations (as older loops write it). */
function headerless() {
  const recs = buildCleanTrace();
  delete (recs[0] as { expect?: unknown }).expect;
  return recs;
}

Deno.test("auditRun: without header expectations, config.yaml supplies them", async () => {
  assert.equal(await readConfigExpect("/nonexistent"), null);
  const clean = await runWith(toText(headerless()), stringify(resolved()));
  const ok = await auditRun(clean);
  assert.deepEqual(ok.violations, []);
  assert.equal(ok.expectSource, `${clean}/config.yaml`);
  assert.ok(
    ok.invariants.find((i) => i.name === "config-consistency")!.checked > 0,
  );
  // configured for 2 passes, the trace ran 3
  const cfg2 = resolved();
  cfg2.custom.extra.stage2_ab.n_softctx_iter = 2;
  const wrong = await runWith(toText(headerless()), stringify(cfg2));
  const r = await auditRun(wrong);
  // every forward of the 4 Channel-A steps (A, A, B, A, A, B) is reported
  assert.deepEqual(
    r.violations.map((v) => v.invariant),
    Array(4 * WINDOW * N_PASSES).fill("config-consistency"),
  );
  assert.match(
    r.violations[0].message,
    /ran 3 pass\(es\), n_softctx_iter is 2 in .*config\.yaml/,
  );
  for (const d of [clean, wrong]) await Deno.remove(d, { recursive: true });
});

Deno.test("readConfigExpect: a run whose model.checkpoint is gone is still audited against its config", async () => {
  const cfg = { ...resolved(), model: { checkpoint: "/nonexistent/ckpt-0" } };
  const dir = await runWith("", stringify(cfg));
  assert.equal((await readConfigExpect(dir))?.nSoftctxIter, N_PASSES);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("auditRun: unusable config.yaml -> RunReadError naming it", async () => {
  const dir = await runWith(toText(headerless()), "training: [unclosed\n");
  await assert.rejects(
    () => auditRun(dir),
    (e: unknown) =>
      e instanceof RunReadError &&
      /config\.yaml:\d+: YAML syntax error/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config-consistency: a step logging another training seed", async () => {
  const recs = buildCleanTrace();
  const i = find(recs, (r) => r.kind === "step" && r.globalStep === 2);
  const step = recs[i];
  assert.ok(step.kind === "step");
  // self-consistent seed formula, but not the run's seed
  step.trainingSeed = SEED + 1;
  step.rolloutSeedBase = (SEED + 1 + 2 * 1000003) & 0x7FFFFFFF;
  for (const r of recs) {
    if (r.kind === "generate" && r.globalStep === 2) {
      r.seeds = [step.rolloutSeedBase + r.microBatch];
    }
  }
  const dir = await runWith(toText(recs));
  const r = await auditRun(dir);
  assert.deepEqual(r.violations.map((v) => v.invariant), [
    "config-consistency",
  ]);
  assert.match(
    r.violations[0].message,
    /training seed 18 but training\.seed is 17/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config-consistency: buffer reuse beyond m_steps or when disabled", async () => {
  // steps 2 (fresh B) then 3 and 4 reuse it: m_steps 2 allows one reuse step
  const recs = buildCleanTrace({ steps: 5, evalAt: [] });
  // reuse steps replay the buffer: step 2's window is the only rollout
  const header = recs[0];
  assert.ok(header.kind === "run");
  header.expect!.rolloutBuffer = { enabled: true, mSteps: 2 };
  for (const s of [3, 4]) {
    for (const r of recs) {
      if (r.kind === "step" && r.globalStep === s) {
        Object.assign(r, { channel: "B", bufferReuse: true });
      }
      if (r.kind === "forward" && r.globalStep === s) r.channel = "B";
    }
  }
  // B steps train on one plain pass per micro-batch
  const kept = recs.filter((r) =>
    !(r.kind === "forward" && (r.globalStep === 3 || r.globalStep === 4) &&
      r.pass !== 2)
  );
  for (const r of kept) {
    if (r.kind === "forward" && (r.globalStep === 3 || r.globalStep === 4)) {
      Object.assign(r, {
        pass: 0,
        nPasses: 1,
        inputKind: "input_ids",
        placeholderBitwiseEqual: null,
        observed: null,
      });
      r.argKeys[0] = "inputIds";
    }
  }
  const dir = await runWith(toText(kept));
  const r = await auditRun(dir);
  assert.deepEqual(r.violations.map((v) => v.invariant), [
    "config-consistency",
  ]);
  assert.match(
    r.violations[0].message,
    /step 4: 2 consecutive buffer-reuse steps; m_steps 2 allows 1/,
  );
  header.expect!.rolloutBuffer = { enabled: false, mSteps: 2 };
  await Deno.writeTextFile(`${dir}/trace.jsonl`, toText(kept));
  const r2 = await auditRun(dir);
  assert.match(
    r2.violations[0].message,
    /step 3: reuses a rollout buffer but .* has rollout_buffer disabled/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("header expectations win over config.yaml", async () => {
  const cfg = resolved();
  cfg.custom.extra.stage2_ab.n_softctx_iter = 7; // would fail if it were used
  const recs = buildCleanTrace();
  const f =
    recs[find(recs, (r) => isForward(r, { channel: "A" }))] as ForwardRecord;
  assert.equal(f.nPasses, N_PASSES);
  const dir = await runWith(toText(recs), stringify(cfg));
  const r = await auditRun(dir);
  assert.deepEqual(r.violations, []);
  assert.equal(r.expectSource, "the trace header");
  await Deno.remove(dir, { recursive: true });
});
