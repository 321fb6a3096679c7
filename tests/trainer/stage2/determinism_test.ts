/**
 * End-to-end Stage-2 runs through the shared training loop: same config and
 * seed give bitwise-identical weights and identical metrics (timing aside)
 * for A-only, B-only (greedy) and mixed schedules; a run stopped after a
 * checkpoint and resumed reproduces the uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfigObject } from "../../../trainer/config/mod.ts";
import { train, type TrainOptions } from "../../../trainer/loop/train.ts";
import { deterministicPart } from "../../../trainer/loop/metrics.ts";
import { auditRun } from "../../../audit/trace/mod.ts";

const quiet = { log: () => {}, progressTty: false, skipRolloutEval: true };

async function config(
  dir: string,
  pattern: string[],
  extra: Record<string, unknown> = {},
) {
  return await resolveConfigObject({
    data: {
      synth: { n_train: 6, n_val: 1, seed: 5, image_size: 64, max_objects: 2 },
    },
    training: {
      output_dir: dir,
      seed: 11,
      max_steps: 3,
      micro_batch_size: 2,
      gradient_accumulation_steps: 1,
      learning_rate: 2e-3,
      warmup_steps: 1,
      logging_steps: 1,
      eval_steps: 0,
      save_steps: 1,
      save_total_limit: null,
      trace: "summary",
      ...extra,
    },
    custom: {
      trainer_variant: "stage2_ab_training",
      extra: {
        stage2_ab: {
          schedule: { pattern },
          n_softctx_iter: 2,
          desc_ce_weight: 0.5,
        },
        rollout_matching: { decode_mode: "greedy", max_new_tokens: 12 },
      },
    },
  }, join(dir, "test.yaml"));
}

async function run(
  dir: string,
  pattern: string[],
  o: Partial<TrainOptions> = {},
  rolloutExtra: Record<string, unknown> = {},
  trainingExtra: Record<string, unknown> = {},
) {
  const cfg = await config(dir, pattern, trainingExtra);
  Object.assign(cfg.custom.extra.rollout_matching, rolloutExtra);
  return await train({ config: cfg, ...quiet, ...o });
}

async function auditClean(dir: string) {
  const report = await auditRun(dir);
  assert.deepEqual(report.violations.map((v) => v.message), []);
  assert.ok(report.ok);
}

const metrics = async (dir: string) =>
  (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n").map(
    deterministicPart,
  );
const weights = (dir: string, step: number) =>
  Deno.readFile(join(dir, `checkpoint-${step}/model.safetensors`));

for (const pattern of [["A"], ["B"], ["A", "B"]]) {
  const mixed = pattern.length > 1;
  Deno.test(
    `pattern ${pattern.join("")}: two runs are bitwise identical${
      mixed ? "; stop + resume matches the uninterrupted run" : ""
    }`,
    async () => {
      const root = await Deno.makeTempDir({ prefix: "stage2-det-" });
      try {
        const a = join(root, "a"), b = join(root, "b");
        await run(a, pattern);
        await run(b, pattern);
        const ma = await metrics(a);
        assert.deepEqual(await metrics(b), ma);
        assert.deepEqual(await weights(b, 3), await weights(a, 3));
        await auditClean(a);
        const train = ma.map((l) => JSON.parse(l)).filter((l) =>
          l.kind === "train"
        );
        assert.equal(train.length, 3);
        for (const l of train) {
          assert.ok(
            Number.isFinite(l["loss/ce"]) &&
              Number.isFinite(l["loss/bbox_l1"]) &&
              Number.isFinite(l["loss/bbox_giou"]),
          );
          const ch = pattern[(l.step - 1) % pattern.length];
          assert.equal(l["stage2/channel_a"], ch === "A" ? 1 : 0);
          assert.equal(l["stage2/channel_b"], ch === "B" ? 1 : 0);
          assert.equal(l["rollout/seed_base"], undefined, "never averaged");
        }
        // One exact seed-base line per step with fresh rollouts (every B step).
        const rollouts = (await metrics(a)).map((l) => JSON.parse(l)).filter((
          l,
        ) => l.kind === "rollout");
        const bSteps = [0, 1, 2].filter((s) =>
          pattern[s % pattern.length] === "B"
        );
        assert.deepEqual(rollouts.map((l) => l.global_step), bSteps);
        for (const l of rollouts) {
          assert.equal(
            l["rollout/seed_base"],
            (11 + l.global_step * 1000003) & 0x7FFFFFFF,
          );
        }
        if (mixed) {
          // Kill after step 1 (a checkpoint), resume: schedule and weights continue.
          const cut = join(root, "cut");
          const half = await run(cut, pattern, { stopAfterStep: 1 });
          assert.equal(half.stopped, true);
          const rest = await run(cut, pattern, { resume: "auto" });
          assert.equal(rest.globalStep, 3);
          assert.deepEqual(await weights(cut, 3), await weights(a, 3));
          const trainLines = (m: string[]) =>
            m.filter((l) => JSON.parse(l).kind === "train");
          assert.deepEqual(trainLines(await metrics(cut)), trainLines(ma));
          await auditClean(cut);
        }
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  );
}

Deno.test("rollout buffer: resume inside a reuse window replays the saved rollouts", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-buffer-" });
  const buf = { rollout_buffer: { enabled: true, m_steps: 2 } };
  try {
    const full = join(root, "full"), cut = join(root, "cut");
    await run(full, ["B", "A"], {}, buf);
    // Step 0 rolls out fresh, step 1 reuses it (pattern says A), step 2 is B.
    const steps = (await metrics(full)).map((l) => JSON.parse(l)).filter((l) =>
      l.kind === "train"
    );
    assert.deepEqual(steps.map((l) => l["stage2/channel_b"]), [1, 1, 1]);
    const rolloutSteps = (await metrics(full)).map((l) => JSON.parse(l))
      .filter((l) => l.kind === "rollout").map((l) => l.global_step);
    assert.deepEqual(
      rolloutSteps,
      [0, 2],
      "no fresh rollouts on the reuse step",
    );
    await run(cut, ["B", "A"], { stopAfterStep: 1 }, buf);
    await run(cut, ["B", "A"], { resume: "auto" }, buf);
    assert.deepEqual(await weights(cut, 3), await weights(full, 3));
    await auditClean(full);
    await auditClean(cut);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("eval rollouts at every eval step leave the training bit-for-bit unchanged and the trace clean", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-evalro-" });
  // sampled Channel-B rollouts: their per-request seeds must not see the
  // greedy eval rollouts run between the steps
  const sample = { decode_mode: "sample", temperature: 1.0, top_p: 0.9 };
  const everyStep = { eval_steps: 1 };
  try {
    const plain = join(root, "plain"), ro = join(root, "rollouts");
    await run(plain, ["A", "B"], {}, sample, everyStep);
    const r = await run(
      ro,
      ["A", "B"],
      { skipRolloutEval: false },
      sample,
      everyStep,
    );
    assert.deepEqual(await weights(ro, 3), await weights(plain, 3));
    const lines = async (dir: string, kind: string) =>
      (await metrics(dir)).map((l) => JSON.parse(l)).filter((l) =>
        l.kind === kind
      );
    for (const kind of ["train", "rollout"]) {
      assert.deepEqual(await lines(ro, kind), await lines(plain, kind), kind);
    }
    // the eval lines carry the same eval loss, plus the rollout metrics
    const evPlain = await lines(plain, "eval"), evRo = await lines(ro, "eval");
    assert.deepEqual(evRo.map((l) => l.step), [0, 1, 2, 3]);
    assert.deepEqual(
      evRo.map((l) => l.eval_loss),
      evPlain.map((l) => l.eval_loss),
    );
    for (const l of evRo) {
      for (const k of ["eval/parse_rate", "eval/f1", "eval/ap"]) {
        assert.ok(Number.isFinite(l[k]), `${k} in ${JSON.stringify(l)}`);
      }
    }
    assert.ok(evPlain.every((l) => !("eval/parse_rate" in l)));
    // the final summary is the last eval step's rollouts, with their files
    assert.equal(r.summary?.global_step, 3);
    const onDisk = JSON.parse(
      await Deno.readTextFile(join(ro, "eval_summary.json")),
    );
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(r.summary)));
    const samples = await Deno.readTextFile(join(ro, "eval_samples.jsonl"));
    assert.equal(samples.trim().split("\n").length, r.summary?.samples);
    await auditClean(ro);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
