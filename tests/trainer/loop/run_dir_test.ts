import assert from "node:assert/strict";
import { join } from "node:path";
import {
  inspectCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  prepareRunDir,
  rotateCheckpoints,
  RUN_FILES,
  type RunDirOptions,
  writeCheckpointDir,
} from "../../../trainer/loop/run_dir.ts";
import {
  CHECKPOINT_EVAL_DIR,
  OVERLAYS_DIR,
} from "../../../trainer/eval/summary.ts";
import { ROLLOUT_BUFFER_DIR } from "../../../trainer/stage2/buffer.ts";
import { InputError } from "../../../trainer/errors.ts";
import { encodeSafetensors } from "../../../trainer/model/safetensors.ts";

/** Fills `dir` with the files of a stage2 checkpoint at `step` (tiny tensors). */
async function fakeCheckpoint(dir: string, step: number, variant = "sft") {
  await Deno.mkdir(dir, { recursive: true });
  const tensor = (n: number) =>
    encodeSafetensors([["w", {
      shape: [n],
      data: new Float32Array(n).fill(step),
    }]], {});
  await Deno.writeFile(join(dir, "model.safetensors"), tensor(6));
  await Deno.writeFile(join(dir, "optimizer.safetensors"), tensor(12));
  await Deno.writeTextFile(join(dir, "config.json"), "{}");
  await Deno.writeTextFile(join(dir, "tokenizer.json"), "{}");
  await Deno.writeTextFile(
    join(dir, "trainer_state.json"),
    JSON.stringify({
      global_step: step,
      max_steps: 10,
      training_seed: 1,
      config_hash: "h",
      data_cursor: { epoch: 0, offset: step },
      rng: {},
      log_window: {},
      elapsed_s: 0,
      variant,
      variant_state: null,
    }),
  );
}

/** An HF Trainer checkpoint: stage2 must never delete or rotate it. */
async function hfCheckpoint(dir: string) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeFile(join(dir, "pytorch_model.bin"), new Uint8Array(16));
  await Deno.writeTextFile(
    join(dir, "trainer_state.json"),
    JSON.stringify({ global_step: 500, log_history: [] }),
  );
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-rundir-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const ls = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => e.name).sort();

function opts(o: Partial<RunDirOptions> = {}): RunDirOptions & {
  notes: string[];
} {
  const notes: string[] = [];
  return {
    resume: null,
    overwrite: false,
    variant: "sft",
    log: (l) => void notes.push(l),
    notes,
    ...o,
  };
}

const save = (dir: string, step: number) =>
  writeCheckpointDir(dir, step, (tmp) => fakeCheckpoint(tmp, step));

Deno.test("checkpoints are renamed into place, `latest` follows, rotation keeps the newest", async () => {
  await withDir(async (dir) => {
    assert.equal(await latestCheckpoint(dir), null);
    for (const step of [5, 10, 15]) {
      const d = await writeCheckpointDir(dir, step, async (tmp) => {
        assert.match(tmp, /\.tmp-checkpoint-/);
        await fakeCheckpoint(tmp, step);
      });
      assert.equal(await latestCheckpoint(dir), d);
    }
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [
      5,
      10,
      15,
    ]);
    const removed = await rotateCheckpoints(dir, 2, join(dir, "checkpoint-15"));
    assert.deepEqual(removed, [join(dir, "checkpoint-5")]);
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [10, 15]);
  });
});

Deno.test("a failed checkpoint write leaves no checkpoint folder and keeps `latest`", async () => {
  await withDir(async (dir) => {
    const first = await save(dir, 1);
    await assert.rejects(
      writeCheckpointDir(dir, 2, () => Promise.reject(new Error("disk full"))),
      /disk full/,
    );
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [1]);
    assert.equal(await latestCheckpoint(dir), first);
  });
});

Deno.test("a `latest` pointer naming a missing or odd folder is an error, not a silent fresh start", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "latest"), "checkpoint-9\n");
    await assert.rejects(
      latestCheckpoint(dir),
      /names checkpoint-9, which does not exist/,
    );
    await Deno.writeTextFile(join(dir, "latest"), "../etc\n");
    await assert.rejects(
      latestCheckpoint(dir),
      /not a checkpoint-<step> folder/,
    );
  });
});

Deno.test("checkpoint folders are classified: complete, damaged (truncated, missing file), foreign (HF)", async () => {
  await withDir(async (dir) => {
    const ok = join(dir, "checkpoint-3");
    await fakeCheckpoint(ok, 3);
    assert.equal((await inspectCheckpoint(ok, 3)).kind, "complete");

    const cut = join(dir, "checkpoint-4");
    await fakeCheckpoint(cut, 4);
    const bytes = await Deno.readFile(join(cut, "model.safetensors"));
    await Deno.writeFile(join(cut, "model.safetensors"), bytes.slice(0, -4));
    const c4 = await inspectCheckpoint(cut, 4);
    assert.equal(c4.kind, "damaged");
    assert.match(c4.why, /model\.safetensors .*truncated/);

    const noOpt = join(dir, "checkpoint-5");
    await fakeCheckpoint(noOpt, 5);
    await Deno.remove(join(noOpt, "optimizer.safetensors"));
    assert.deepEqual(
      await inspectCheckpoint(noOpt, 5),
      {
        step: 5,
        dir: noOpt,
        kind: "damaged",
        why: "missing optimizer.safetensors",
      },
    );

    const hf = join(dir, "checkpoint-500");
    await hfCheckpoint(hf);
    const h = await inspectCheckpoint(hf, 500);
    assert.equal(h.kind, "foreign");
    assert.match(h.why, /pytorch_model\.bin/);
    // HF's trainer_state.json alone does not make a folder stage2's
    await Deno.remove(join(hf, "pytorch_model.bin"));
    assert.equal((await inspectCheckpoint(hf, 500)).kind, "foreign");
  });
});

Deno.test("a fresh start refuses a non-empty folder; --overwrite removes only what stage2 wrote", async () => {
  await withDir(async (dir) => {
    await save(dir, 2);
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), "{}\n");
    await Deno.writeTextFile(join(dir, "notes.txt"), "mine");
    await Deno.mkdir(join(dir, "data"));
    await Deno.writeTextFile(join(dir, "data", "synth.json"), "{}");

    const refused = await prepareRunDir(dir, opts()).catch((e) => e);
    assert.ok(refused instanceof InputError);
    assert.match(
      refused.message,
      /already holds a run \(checkpoint-2\/, data\/, latest, metrics\.jsonl, \.\.\. \(5 entries\)\); pass --resume to continue it, or --overwrite to start over/,
    );
    assert.deepEqual(ls(dir), [
      "checkpoint-2",
      "data",
      "latest",
      "metrics.jsonl",
      "notes.txt",
    ]);

    const o = opts({ overwrite: true });
    assert.deepEqual(await prepareRunDir(dir, o), {
      resumeDir: null,
      trainerState: null,
    });
    // the synthetic data is reused when its settings match; notes.txt is not ours
    assert.deepEqual(ls(dir), ["data", "notes.txt"]);
    assert.ok(o.notes.some((n) => /kept notes\.txt/.test(n)), o.notes.join());
  });
});

Deno.test("--overwrite removes everything train, eval and report write at the top of a run, plus interrupted temp files; a checkpoint's eval/ keeps it stage2's", async () => {
  await withDir(async (dir) => {
    // every entry of RUN_FILES, as train / the final eval / the report leave them
    for (const f of RUN_FILES) {
      if (f === OVERLAYS_DIR || f === ROLLOUT_BUFFER_DIR) {
        await Deno.mkdir(join(dir, f));
        await Deno.writeTextFile(join(dir, f, "x"), "");
      } else await Deno.writeTextFile(join(dir, f), "");
    }
    // a resume truncating metrics.jsonl, killed before its rename
    await Deno.writeTextFile(join(dir, "metrics.jsonl.tmp-4242"), "");
    // `stage2 eval --checkpoint` writes into the checkpoint by default
    const c = await save(dir, 3);
    await Deno.mkdir(join(c, CHECKPOINT_EVAL_DIR));
    await Deno.writeTextFile(
      join(c, CHECKPOINT_EVAL_DIR, "eval_summary.json"),
      "{}",
    );
    assert.equal((await inspectCheckpoint(c, 3)).kind, "complete");
    await Deno.writeTextFile(join(dir, "mine.txt"), "");
    // the files of every writer are on the list (train, eval, report, buffer,
    // the trace recorder's replay batch for `audit --probe`)
    for (
      const f of [
        "config.yaml",
        "trace.jsonl",
        "probe_batch.json",
        "eval_samples.jsonl",
        "overlays",
        "report.html",
        "rollout_buffer",
      ]
    ) assert.ok(RUN_FILES.includes(f), f);
    const o = opts({ overwrite: true });
    await prepareRunDir(dir, o);
    assert.deepEqual(ls(dir), ["mine.txt"]);
  });
});

Deno.test("a folder holding only foreign files refuses differently; an HF checkpoint is never deleted", async () => {
  await withDir(async (dir) => {
    await hfCheckpoint(join(dir, "checkpoint-500"));
    const e = await prepareRunDir(dir, opts()).catch((e) => e);
    assert.match(
      e.message,
      /is not empty \(checkpoint-500\/\); choose an empty training\.output_dir, or pass --overwrite/,
    );
    // --overwrite would write checkpoints under the same names: refuse, keep it
    const o = await prepareRunDir(dir, opts({ overwrite: true })).catch((e) =>
      e
    );
    assert.ok(o instanceof InputError);
    assert.match(o.message, /checkpoint-500\/, which stage2 did not write/);
    assert.deepEqual(ls(join(dir, "checkpoint-500")), [
      "pytorch_model.bin",
      "trainer_state.json",
    ]);
    // nor replaced by a save or removed by rotation
    await assert.rejects(
      save(dir, 500),
      /checkpoint-500 already exists and was not written by stage2/,
    );
    await save(dir, 1);
    await save(dir, 2);
    assert.deepEqual(
      await rotateCheckpoints(dir, 1, join(dir, "checkpoint-2")),
      [join(dir, "checkpoint-1")],
    );
    assert.ok(ls(dir).includes("checkpoint-500"));
  });
});

Deno.test("--resume without `latest` takes the newest complete checkpoint, never a fresh start", async () => {
  await withDir(async (dir) => {
    await save(dir, 2);
    await save(dir, 4);
    // killed between the rename of checkpoint-6 and the `latest` write
    await fakeCheckpoint(join(dir, "checkpoint-6"), 6);
    // and a damaged checkpoint-8
    await fakeCheckpoint(join(dir, "checkpoint-8"), 8);
    await Deno.remove(join(dir, "checkpoint-8", "tokenizer.json"));
    await Deno.remove(join(dir, "latest"));
    const o = opts({ resume: "auto" });
    const r = await prepareRunDir(dir, o);
    assert.equal(r.resumeDir, join(dir, "checkpoint-6"));
    assert.equal(r.trainerState?.global_step, 6);
    assert.ok(o.notes.some((n) => /checkpoint-8 is damaged/.test(n)));
    assert.ok(o.notes.some((n) => /latest names nothing/.test(n)));
    assert.deepEqual(
      ls(dir),
      ["checkpoint-2", "checkpoint-4", "checkpoint-6", "checkpoint-8"],
    );
  });
});

Deno.test("--resume refuses a run without a complete checkpoint; an empty folder starts fresh", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), "{}\n");
    await fakeCheckpoint(join(dir, "checkpoint-3"), 3);
    await Deno.remove(join(dir, "checkpoint-3", "optimizer.safetensors"));
    const e = await prepareRunDir(dir, opts({ resume: "auto" })).catch((e) =>
      e
    );
    assert.ok(e instanceof InputError);
    assert.match(
      e.message,
      /holds no complete checkpoint to resume \(checkpoint-3\/ is damaged: missing optimizer\.safetensors\); pass --overwrite instead/,
    );
    assert.deepEqual(ls(dir), ["checkpoint-3", "metrics.jsonl"]);
    // resume-or-restart (what the warm start uses) starts over
    const o = opts({ resume: "auto", overwrite: true });
    assert.equal((await prepareRunDir(dir, o)).resumeDir, null);
    assert.deepEqual(ls(dir), []);
    const fresh = opts({ resume: "auto" });
    assert.equal(
      (await prepareRunDir(join(dir, "new"), fresh)).resumeDir,
      null,
    );
    assert.match(fresh.notes.join(), /nothing to resume/);
  });
});

Deno.test("resuming an older checkpoint drops the newer ones; a foreign checkpoint in the folder refuses any resume", async () => {
  await withDir(async (dir) => {
    for (const s of [2, 4, 6]) await save(dir, s);
    await hfCheckpoint(join(dir, "checkpoint-500"));
    for (const resume of ["auto", join(dir, "checkpoint-2")]) {
      await assert.rejects(
        prepareRunDir(dir, opts({ resume })),
        /holds checkpoint-500\/, which stage2 did not write \(holds pytorch_model\.bin\); .*move it away/,
      );
    }
    await assert.rejects(
      prepareRunDir(dir, opts({ resume: join(dir, "checkpoint-500") })),
      /--resume .*checkpoint-500: not a complete stage2 checkpoint \(holds pytorch_model\.bin\)/,
    );
    await Deno.rename(join(dir, "checkpoint-500"), join(dir, "hf-500"));
    const r = await prepareRunDir(
      dir,
      opts({ resume: join(dir, "checkpoint-2") }),
    );
    assert.equal(r.resumeDir, join(dir, "checkpoint-2"));
    assert.deepEqual(ls(dir), ["checkpoint-2", "hf-500", "latest"]);
    assert.equal(await latestCheckpoint(dir), join(dir, "checkpoint-2"));
  });
});

Deno.test("resuming with another trainer variant refuses", async () => {
  await withDir(async (dir) => {
    await writeCheckpointDir(dir, 3, (tmp) => fakeCheckpoint(tmp, 3, "sft"));
    await assert.rejects(
      prepareRunDir(
        dir,
        opts({ resume: "auto", variant: "stage2_ab_training" }),
      ),
      (e: Error) =>
        e instanceof InputError &&
        /trained with custom\.trainer_variant "sft", this config runs "stage2_ab_training"/
          .test(e.message),
    );
  });
});
