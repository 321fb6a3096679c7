/**
 * End to end: a tiny real Stage-2 AB run (pattern A, A, B; Channel A with 2
 * soft-context passes, Channel B with real rollouts) writes a full trace
 * that the audit passes, including across a kill-and-resume: the resumed
 * trace repeats no step and continues the schedule.
 */
import assert from "node:assert/strict";
import { loadConfig } from "../../../trainer/config/mod.ts";
import { train } from "../../../trainer/loop/train.ts";
import { auditRun } from "../../../audit/trace/mod.ts";
import { parseTrace } from "../../../audit/trace/parse.ts";

const CONFIG =
  new URL("../../../configs/stage2_ab/ab_mixed.yaml", import.meta.url)
    .pathname;

Deno.test({
  name: "e2e: a tiny Stage-2 AB run, killed and resumed, audits clean",
  // the run writes files and may leave worker handles to the wasm backend
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "stage2-audit-e2e-" });
    const config = await loadConfig(CONFIG, [
      "model.warm_start_config=null",
      `training.output_dir=${out}/run`,
      "training.max_steps=4",
      "training.trace=full",
      "training.micro_batch_size=2",
      "training.eval_steps=0",
      "training.save_steps=2",
      "training.logging_steps=1",
      "data.synth.n_train=8",
      "data.synth.n_val=2",
      "custom.extra.rollout_matching.max_new_tokens=8",
    ]);
    const log = () => {};
    const first = await train({
      config,
      resume: null,
      log,
      progressTty: false,
      stopAfterStep: 3, // "killed" after step 3, one step past checkpoint-2
      skipRolloutEval: true,
    });
    // the checkpoint at 2 is the resume point: step 2 (Channel B) was done
    // after it and must be redone, not repeated, in the trace
    await Deno.remove(`${first.runDir}/checkpoint-3`, { recursive: true })
      .catch(() => {});
    await Deno.writeTextFile(`${first.runDir}/latest`, "checkpoint-2");
    await train({
      config,
      resume: "auto",
      log,
      progressTty: false,
      skipRolloutEval: true,
    });
    const report = await auditRun(first.runDir);
    assert.deepEqual(report.violations, [], JSON.stringify(report.violations));
    const lines = parseTrace(
      await Deno.readTextFile(`${first.runDir}/trace.jsonl`),
    ).map((l) => l.rec);
    const steps = lines.flatMap((r) =>
      r.kind === "step" ? [[r.globalStep, r.channel]] : []
    );
    assert.deepEqual(steps, [[0, "A"], [1, "A"], [2, "B"], [3, "A"]]);
    assert.ok(lines.some((r) => r.kind === "resume" && r.globalStep === 2));
    const byName = new Map(report.invariants.map((i) => [i.name, i.checked]));
    for (
      const name of [
        "channel-a-inputs-embeds",
        "causal-shift",
        "softctx-applied",
        "seed-formula",
        "packing-position-ids",
      ]
    ) {
      assert.ok(byName.get(name)! > 0, `${name} never applied to the run`);
    }
    await Deno.remove(out, { recursive: true });
  },
});
