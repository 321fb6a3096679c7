/**
 * Run-folder safety end to end: a non-empty folder refuses, foreign
 * checkpoints survive, a diverging run stops before the bad update (exit 1),
 * a second training process on the same folder refuses, and `kill -9`
 * mid-run followed by `--resume` gives the weights of an uninterrupted run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

/** A tiny SFT config: 4 synthetic images, `steps` single-batch steps. */
async function tinyConfig(
  dir: string,
  steps: number,
  extra: string[] = [],
): Promise<string> {
  const path = join(dir, "tiny.yaml");
  await Deno.writeTextFile(
    path,
    [
      "data:",
      "  synth: { n_train: 4, n_val: 1, seed: 2, image_size: 64, max_objects: 1 }",
      "training:",
      `  output_dir: ${join(dir, "run")}`,
      `  max_steps: ${steps}`,
      "  micro_batch_size: 2",
      "  gradient_accumulation_steps: 1",
      "  logging_steps: 1",
      "  eval_steps: 0",
      "  save_steps: 1",
      "  save_total_limit: null",
      "  eval_max_samples: 1",
      "  trace: off",
      ...extra,
      "custom:",
      "  trainer_variant: sft",
      "",
    ].join("\n"),
  );
  return path;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-safety-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);
const ls = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("train refuses a non-empty output_dir, never touches an HF checkpoint, and --overwrite keeps foreign files", async () => {
  await withDir(async (dir) => {
    const cfg = await tinyConfig(dir, 1);
    const hf = join(dir, "run", "checkpoint-500");
    await Deno.mkdir(hf, { recursive: true });
    await Deno.writeFile(join(hf, "pytorch_model.bin"), new Uint8Array(8));
    const fresh = await run(["train", "--config", cfg, "--no-progress"]);
    assert.equal(fresh.code, 2, fresh.err);
    assert.match(
      fresh.err,
      /output_dir .*run is not empty \(checkpoint-500\/\)/,
    );
    const over = await run([
      "train",
      "--config",
      cfg,
      "--overwrite",
      "--no-progress",
    ]);
    assert.equal(over.code, 2, over.err);
    assert.match(over.err, /checkpoint-500\/, which stage2 did not write/);
    assert.deepEqual(ls(hf), ["pytorch_model.bin"]);
    const both = await run([
      "train",
      "--config",
      cfg,
      "--resume",
      "--overwrite",
    ]);
    assert.equal(both.code, 2);
    assert.match(both.err, /either --resume .* or --overwrite/);

    // A finished run is not restarted by accident either.
    await Deno.remove(hf, { recursive: true });
    await Deno.writeTextFile(join(dir, "run", "notes.txt"), "mine");
    const first = await run([
      "train",
      "--config",
      cfg,
      "--overwrite",
      "--no-progress",
    ]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.err, /kept notes\.txt/);
    const again = await run(["train", "--config", cfg, "--no-progress"]);
    assert.equal(again.code, 2);
    assert.match(
      again.err,
      /already holds a run \(checkpoint-1\/.*\); pass --resume to continue it, or --overwrite/,
    );
    assert.ok(
      await exists(join(dir, "run", "checkpoint-1", "model.safetensors")),
    );
    assert.equal(
      await Deno.readTextFile(join(dir, "run", "notes.txt")),
      "mine",
    );
  });
});

Deno.test("a NaN loss stops the run at that step before the update: exit 1, good checkpoints kept, no NaN saved", async () => {
  await withDir(async (dir) => {
    // Adam moves every weight by about the learning rate: 1e30 overflows
    // the next forward pass.
    const cfg = await tinyConfig(dir, 4, [
      "  learning_rate: 1.0e+30",
      "  warmup_steps: 0",
    ]);
    const r = await run(["train", "--config", cfg, "--no-progress"]);
    assert.equal(r.code, 1, r.err);
    assert.match(
      r.err,
      /^stage2: training diverged at step 2: the loss is NaN \(micro-batch 0\); the update was not applied and nothing was saved \(checkpoints up to .*checkpoint-1 are kept\)\. Likely cause: the learning rate \(.*\) is too high/m,
    );
    const names = ls(join(dir, "run"));
    assert.ok(names.includes("checkpoint-1"));
    assert.ok(!names.includes("checkpoint-2"));
    assert.ok(!names.includes("run_complete.json"));
    const metrics = await Deno.readTextFile(join(dir, "run", "metrics.jsonl"));
    assert.doesNotMatch(metrics, /NaN|null/);
  });
});

Deno.test("a second train on the same folder refuses; kill -9 mid-run, then --resume, gives the uninterrupted run's weights", async () => {
  await withDir(async (dir) => {
    const steps = 6;
    const cfg = await tinyConfig(dir, steps);
    const runDir = join(dir, "run");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-prompt",
        MAIN,
        "train",
        "--config",
        cfg,
        "--no-progress",
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = child.stderr.pipeThrough(new TextDecoderStream());
    const errText = (async () => {
      let t = "";
      for await (const c of stderr) t += c;
      return t;
    })();
    try {
      // wait until the child holds the lock
      while (!(await exists(join(runDir, "train.lock")))) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = await run(["train", "--config", cfg, "--no-progress"]);
      assert.equal(second.code, 2, second.err);
      assert.match(
        second.err,
        new RegExp(
          `output_dir ${runDir} is in use by another training process \\(pid ${child.pid} on `,
        ),
      );
      const resumer = await run(["train", "--config", cfg, "--resume"]);
      assert.equal(resumer.code, 2, "--resume refuses too while it runs");
      // kill -9 once the second checkpoint is on disk, mid-run
      while (!(await exists(join(runDir, "checkpoint-2")))) {
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
    } finally {
      const status = await child.status;
      await errText;
      assert.equal(status.signal, "SIGKILL", "killed before it finished");
    }
    assert.ok(!ls(runDir).includes("run_complete.json"));

    // resume: the dead process's lock is taken over with a note
    const resumed = await run([
      "train",
      "--config",
      cfg,
      "--resume",
      "--no-progress",
    ]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.match(resumed.err, /taking over the lock .* left by pid \d+/);
    assert.match(resumed.err, /resuming from .*checkpoint-\d+/);

    // the same config uninterrupted, in a second folder
    const refCfg = join(dir, "ref.yaml");
    await Deno.writeTextFile(
      refCfg,
      (await Deno.readTextFile(cfg)).replace(runDir, join(dir, "ref")),
    );
    const ref = await run(["train", "--config", refCfg, "--no-progress"]);
    assert.equal(ref.code, 0, ref.err);
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      assert.deepEqual(
        await Deno.readFile(join(runDir, `checkpoint-${steps}`, f)),
        await Deno.readFile(join(dir, "ref", `checkpoint-${steps}`, f)),
        `${f} after kill -9 + resume differs from the uninterrupted run`,
      );
    }
  });
});
