import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveConfigObject } from "../../../trainer/config/mod.ts";
import { train } from "../../../trainer/loop/train.ts";
import { bytes, quiet, readMetrics, runTiny, tinyConfig } from "./tiny_run.ts";
import { tf } from "../../../trainer/runtime.ts";

const run = runTiny;

Deno.test("same config twice: bitwise weights and identical metrics; kill + resume continues bit-for-bit", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-loop-" });
  try {
    const a = join(root, "a"), b = join(root, "b"), c = join(root, "c");
    const ra = await run(a);
    assert.equal(ra.globalStep, 4);
    assert.ok(ra.evalLossEnd! < ra.evalLossStart!, "eval loss falls");
    await run(b);
    // determinism across two runs
    assert.deepEqual(await readMetrics(b), await readMetrics(a));
    assert.deepEqual(
      await bytes(join(b, "checkpoint-4/model.safetensors")),
      await bytes(join(a, "checkpoint-4/model.safetensors")),
    );

    // N steps, "kill", resume N steps
    const half = await run(c, { stopAfterStep: 2 });
    assert.equal(half.stopped, true);
    assert.equal(half.globalStep, 2);
    assert.equal(
      (await Deno.readTextFile(join(c, "latest"))).trim(),
      "checkpoint-2",
    );
    const rest = await run(c, { resume: "auto" });
    assert.equal(rest.globalStep, 4);
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      assert.deepEqual(
        await bytes(join(c, "checkpoint-4", f)),
        await bytes(join(a, "checkpoint-4", f)),
        `${f} differs after resume`,
      );
    }
    assert.deepEqual(await readMetrics(c), await readMetrics(a));
    const state = JSON.parse(
      await Deno.readTextFile(join(c, "checkpoint-4/trainer_state.json")),
    );
    assert.equal(state.global_step, 4);
    assert.deepEqual(state.data_cursor, { epoch: 2, offset: 4 });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a different seed gives different weights (the equality above can fail); no tensors leak; --overwrite clears the old run's files", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-loop-" });
  try {
    const a = join(root, "a"), b = join(root, "b");
    const cfgA = await tinyConfig(a, { max_steps: 1, eval_steps: 0 });
    const cfgB = await tinyConfig(b, { max_steps: 1, eval_steps: 0, seed: 12 });
    const live = tf.memory().numTensors;
    // with the validation rollouts (start and end) and their files
    const ra = await train({ config: cfgA, ...quiet, skipRolloutEval: false });
    assert.equal(
      tf.memory().numTensors,
      live,
      "a finished run leaves no tensors behind",
    );
    assert.equal(ra.summary?.global_step, 1);
    // what an earlier run left in b: a fresh start refuses it, --overwrite
    // removes it, whatever part of stage2 wrote it
    const stale = [
      "report.html",
      "eval_samples.jsonl",
      "eval_summary.json",
      "overlays/00000.png",
      "trace.jsonl",
    ];
    await Deno.mkdir(join(b, "overlays"), { recursive: true });
    for (const f of stale) await Deno.writeTextFile(join(b, f), "old");
    await assert.rejects(
      train({ config: cfgB, ...quiet }),
      /already holds a run .*pass --resume to continue it, or --overwrite/,
    );
    await train({ config: cfgB, ...quiet, overwrite: true });
    const left = [...Deno.readDirSync(b)].map((e) => e.name);
    for (const f of ["report.html", "eval_samples.jsonl", "overlays"]) {
      assert.ok(!left.includes(f), `${f} survived a fresh start`);
    }
    assert.notEqual(await Deno.readTextFile(join(b, "trace.jsonl")), "old");
    assert.ok(!left.includes("eval_summary.json"), "no rollouts, no summary");
    assert.notDeepEqual(
      await bytes(join(b, "checkpoint-1/model.safetensors")),
      await bytes(join(a, "checkpoint-1/model.safetensors")),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("packing that cannot hold a sample fails at start-up, saying how to fix it", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-loop-" });
  try {
    const cfg = await tinyConfig(root, {
      packing: { enabled: true, max_length: 16 },
    });
    await assert.rejects(
      train({ config: cfg, ...quiet }),
      /raise training\.packing\.max_length to at least \d+ or set training\.packing\.enabled: false/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("warm start trains the Stage-1 config once, keyed by its hash, then starts from its checkpoint", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-loop-" });
  try {
    const stage1 = join(root, "stage1.yaml");
    await Deno.writeTextFile(
      stage1,
      [
        "data:",
        "  synth: { n_train: 4, n_val: 1, seed: 5, image_size: 64, max_objects: 1 }",
        "training:",
        "  max_steps: 1",
        "  micro_batch_size: 2",
        "  gradient_accumulation_steps: 1",
        "  eval_steps: 0",
        "  save_steps: 0",
        "  trace: off",
        "",
      ].join("\n"),
    );
    const cfg = await resolveConfigObject({
      model: { warm_start_config: "stage1.yaml" },
      data: {
        synth: {
          n_train: 4,
          n_val: 1,
          seed: 5,
          image_size: 64,
          max_objects: 1,
        },
      },
      training: {
        output_dir: join(root, "main"),
        max_steps: 1,
        micro_batch_size: 2,
        gradient_accumulation_steps: 1,
        eval_steps: 0,
        trace: "off",
      },
    }, join(root, "main.yaml"));
    const logs: string[] = [];
    const opts = { ...quiet, log: (s: string) => void logs.push(s) };
    const first = await train({ config: cfg, ...opts });
    assert.ok(first.warmStart, "the warm start ran");
    assert.match(first.warmStart.runDir, /warm_start\/sft-[0-9a-f]{12}$/);
    assert.ok(logs.some((l) => l.startsWith("warm start: training")));
    const firstWeights = await bytes(
      join(first.runDir, "checkpoint-1/model.safetensors"),
    );
    logs.length = 0;
    const second = await train({ config: cfg, ...opts, overwrite: true });
    assert.equal(second.warmStart?.runDir, first.warmStart.runDir);
    assert.ok(
      logs.some((l) => l.startsWith("warm start: reusing")),
      logs.join("\n"),
    );
    // both runs start from the same Stage-1 weights, so they end equal
    assert.deepEqual(
      await bytes(join(second.runDir, "checkpoint-1/model.safetensors")),
      firstWeights,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
