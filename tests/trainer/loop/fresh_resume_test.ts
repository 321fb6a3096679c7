import assert from "node:assert/strict";
import { join } from "node:path";
import { train, type TrainOptions } from "../../../trainer/loop/train.ts";
import { bytes, quiet, readMetrics, runTiny, tinyConfig } from "./tiny_run.ts";

const run = (dir: string, o: Partial<TrainOptions> = {}) =>
  runTiny(dir, o, true);

Deno.test("fresh data: every draw is a new image, nothing is written for training, and kill + resume equals an uninterrupted run", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-fresh-" });
  try {
    const a = join(root, "a"), b = join(root, "b"), c = join(root, "c");
    const ra = await run(a);
    assert.equal(ra.globalStep, 4);
    // 16 draws from a stream of exactly 16 fresh images: one pass, no repeats
    const state = JSON.parse(
      await Deno.readTextFile(join(a, "checkpoint-4/trainer_state.json")),
    );
    assert.deepEqual(state.data_cursor, { epoch: 0, offset: 16 });
    // validation images are on disk, training images are not
    const files = [...Deno.readDirSync(join(a, "data/images"))].map((e) =>
      e.name
    );
    assert.deepEqual(files.sort(), ["val_00000.png", "val_00001.png"]);
    assert.equal(await Deno.readTextFile(join(a, "data/train.jsonl")), "");

    await run(b);
    assert.deepEqual(await readMetrics(b), await readMetrics(a));

    const half = await run(c, { stopAfterStep: 2 });
    assert.equal(half.stopped, true);
    await run(c, { resume: "auto" });
    for (const f of ["model.safetensors", "optimizer.safetensors"]) {
      assert.deepEqual(
        await bytes(join(c, "checkpoint-4", f)),
        await bytes(join(a, "checkpoint-4", f)),
        `${f} differs after resume`,
      );
    }
    assert.deepEqual(await readMetrics(c), await readMetrics(a));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("fresh data trains differently from the fixed set with the same seeds and tokenizer (the equality above can fail)", async () => {
  const root = await Deno.makeTempDir({ prefix: "stage2-fresh-" });
  const tokenizer = new URL(
    "../../fixtures/tokenizer/tiny_tokenizer.json",
    import.meta.url,
  ).pathname;
  try {
    const a = join(root, "a"), b = join(root, "b");
    const one = { max_steps: 1, eval_steps: 0, warmup_steps: 0 };
    const fresh = await tinyConfig(a, one, true);
    fresh.model.tokenizer = tokenizer;
    await train({ config: fresh, ...quiet });
    const fixed = await tinyConfig(b, one);
    fixed.model.tokenizer = tokenizer;
    fixed.data.synth.fresh = false;
    await train({ config: fixed, ...quiet });
    assert.notDeepEqual(
      await bytes(join(b, "checkpoint-1/model.safetensors")),
      await bytes(join(a, "checkpoint-1/model.safetensors")),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
