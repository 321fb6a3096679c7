import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";

Deno.test("stage2 train usage errors exit 2 with a one-line message", async () => {
  const bad = await run(["train", "--set", "no-equals-sign"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--set expects key=value/);

  const missing = await run(["train", "--config", "/nonexistent/x.yaml"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /x\.yaml/);

  const preset = decodeURIComponent(
    new URL("../../configs/stage1_sft.yaml", import.meta.url).pathname,
  );
  const unknownKey = await run([
    "train",
    "--config",
    preset,
    "--set",
    "training.max_stepz=3",
  ]);
  assert.equal(unknownKey.code, 2);
  assert.match(unknownKey.err, /max_stepz/);

  const resume = await run([
    "train",
    "--config",
    preset,
    "--resume",
    "/nonexistent/checkpoint-3",
  ]);
  assert.equal(resume.code, 2);
  assert.match(
    resume.err,
    /--resume \/nonexistent\/checkpoint-3: no such folder/,
  );

  const flag = await run(["train", "--bogus"]);
  assert.equal(flag.code, 2);
});

Deno.test("stage2 train --config runs a tiny SFT config and prints the run folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-cli-train-" });
  try {
    const cfg = join(dir, "tiny.yaml");
    await Deno.writeTextFile(
      cfg,
      [
        "data:",
        "  synth: { n_train: 4, n_val: 1, seed: 2, image_size: 64, max_objects: 1 }",
        "training:",
        `  output_dir: ${join(dir, "run")}`,
        "  max_steps: 2",
        "  micro_batch_size: 2",
        "  gradient_accumulation_steps: 1",
        "  logging_steps: 1",
        "  eval_steps: 0",
        "  save_steps: 1",
        "  save_total_limit: 1",
        "custom:",
        "  trainer_variant: sft",
        "",
      ].join("\n"),
    );
    const r = await run([
      "train",
      "--config",
      cfg,
      "--set",
      "training.trace=off",
      "--no-progress",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`run folder: ${join(dir, "run")}`));
    assert.match(r.out, /parse .*F1@0\.5 .*AP .*mean IoU/);
    assert.match(
      r.out,
      new RegExp(`report: ${join(dir, "run", "report.html")}`),
    );
    // save_total_limit 1 keeps only the newest checkpoint
    const names = [...Deno.readDirSync(join(dir, "run"))].map((e) => e.name)
      .sort();
    assert.ok(names.includes("checkpoint-2"));
    assert.ok(!names.includes("checkpoint-1"));
    for (
      const f of [
        "config.yaml",
        "metrics.jsonl",
        "eval_summary.json",
        "latest",
        "run_complete.json",
        "report.html",
        "eval_samples.jsonl",
      ]
    ) assert.ok(names.includes(f), `${f} missing`);
    assert.ok(!names.includes("trace.jsonl"), "trace off writes no trace");

    // resume of a finished run is a no-op that still reports the folder
    const again = await run([
      "train",
      "--config",
      cfg,
      "--resume",
      "--no-progress",
    ]);
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /resuming from .*checkpoint-2/);
    assert.match(again.err, /nothing to do: the run already completed 2 steps/);
    assert.match(again.out, /parse .*F1@0\.5/);

    // the quickstart's way (`training.resume: auto` in the config): a rerun
    // shows the finished run; --overwrite trains it anew, whatever the config says
    const auto = ["train", "--config", cfg, "--set", "training.resume=auto"];
    const shown = await run([...auto, "--no-progress"]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.err, /nothing to do: the run already completed 2 steps/);
    const anew = await run([...auto, "--overwrite", "--no-progress"]);
    assert.equal(anew.code, 0, anew.err);
    assert.match(anew.err, /starting over: removed checkpoint-2\/, /);
    assert.doesNotMatch(anew.err, /nothing to do/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
