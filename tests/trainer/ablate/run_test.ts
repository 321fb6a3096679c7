import assert from "node:assert/strict";
import { join } from "node:path";
import { readRunRow, runAblation } from "../../../trainer/ablate/run.ts";
import { loadConfig } from "../../../trainer/config/mod.ts";
import { train } from "../../../trainer/loop/train.ts";

const SYNTH =
  "  synth: { n_train: 4, n_val: 2, seed: 5, image_size: 64, max_objects: 1, fresh: true }";

/** A tiny Stage-1 config and a Stage-2 base naming it as warm start. */
async function writeConfigs(root: string): Promise<string> {
  await Deno.writeTextFile(
    join(root, "stage1.yaml"),
    [
      "data:",
      SYNTH,
      "training:",
      "  max_steps: 1",
      "  micro_batch_size: 2",
      "  gradient_accumulation_steps: 1",
      "  eval_steps: 0",
      "  save_steps: 0",
      "  eval_max_samples: 2",
      "  trace: off",
      "",
    ].join("\n"),
  );
  const base = join(root, "base.yaml");
  await Deno.writeTextFile(
    base,
    [
      "model: { warm_start_config: stage1.yaml }",
      "data:",
      SYNTH,
      "training:",
      "  micro_batch_size: 1",
      "  gradient_accumulation_steps: 1",
      "  learning_rate: 1.0e-4",
      "  eval_steps: 0",
      "  save_steps: 1",
      "  trace: off",
      "custom:",
      "  trainer_variant: stage2_ab_training",
      "  extra:",
      "    rollout_matching: { max_new_tokens: 4 }",
      "",
    ].join("\n"),
  );
  return base;
}

Deno.test("ablate: one table from one Stage-1 checkpoint; a re-run skips finished arms and resumes an interrupted one", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-ablate-" });
  try {
    const base = await writeConfigs(root);
    const out = join(root, "abl");
    const tiny = ["training.max_steps=2", "training.eval_max_samples=2"];
    const logs: string[] = [];
    const log = (s: string) => void logs.push(s);

    const first = await runAblation({
      budget: "small",
      outDir: out,
      baseConfig: base,
      arms: ["sft"],
      seeds: [1],
      overrides: tiny,
      log,
    });
    assert.deepEqual(first.rows.map((r) => [r.arm, r.seed]), [
      ["stage1", 0],
      ["sft", 1],
    ]);
    assert.equal(first.rows[1].metrics.samples, 2);
    // the start point is measured on the arms' own held-out images
    assert.equal(
      first.rows[0].metrics.data,
      join(out, "sft-s1", "data", "val.jsonl"),
    );
    assert.equal(first.rows[0].metrics.samples, 2);
    assert.ok(typeof first.rows[1].metrics.wall_s === "number");
    const md = await Deno.readTextFile(join(out, "ablation.md"));
    assert.match(
      md,
      /\| Stage-1 SFT continued \| 1 \| \d\.\d{3} \| \d\.\d{3} \|/,
    );
    assert.match(md, /\| Stage 1 \(start point\) \| 0 \|/);

    // an arm killed after its first step: the re-run must resume it
    const a1Dir = join(out, "a1-s1");
    const cfg = await loadConfig(base, [
      "custom.extra.stage2_ab.schedule.pattern=[A]",
      "custom.extra.stage2_ab.n_softctx_iter=1",
      "training.max_steps=2",
      "training.seed=1",
      ...tiny,
      `training.output_dir=${a1Dir}`,
    ]);
    const half = await train({
      config: cfg,
      stopAfterStep: 1,
      log: () => {},
      progressTty: false,
    });
    assert.equal(half.stopped, true);
    assert.equal(await readRunRow(a1Dir, "a1", 1), null, "not done yet");

    logs.length = 0;
    const second = await runAblation({
      budget: "small",
      outDir: out,
      baseConfig: base,
      arms: ["sft", "a1"],
      seeds: [1],
      overrides: tiny,
      log,
    });
    assert.ok(
      logs.some((l) => /ablate: sft seed 1 already done/.test(l)),
      logs.join("\n"),
    );
    assert.ok(
      !logs.some((l) => /evaluating the start point/.test(l)),
      "the start point's result is reused",
    );
    assert.ok(
      logs.some((l) => l.startsWith(`resuming from ${a1Dir}/checkpoint-1`)),
      logs.join("\n"),
    );
    assert.deepEqual(second.rows.map((r) => r.arm), ["stage1", "sft", "a1"]);
    assert.match(
      await Deno.readTextFile(join(out, "ablation.md")),
      /\| A only, n_softctx_iter 1 \| 1 \|/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ablate: an unknown arm is a clear error before anything trains", async () => {
  await assert.rejects(
    runAblation({ budget: "small", outDir: "/nonexistent", arms: ["c"] }),
    /unknown arm\(s\) c; arms are sft, a1, a2, b, ab/,
  );
});
