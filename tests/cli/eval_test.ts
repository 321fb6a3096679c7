import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";
import { initRuntime } from "../../trainer/runtime.ts";
import { writeSynthDataset } from "../../trainer/data/synth.ts";
import { loadJsonl } from "../../trainer/data/jsonl.ts";
import {
  buildTokenizerFromRecords,
  createTinyModel,
} from "../../trainer/loop/setup.ts";

await initRuntime({ log: () => {} });

/** An untrained tiny checkpoint and a 3-image synthetic val split. */
async function fixture(dir: string): Promise<{ ckpt: string; data: string }> {
  await writeSynthDataset(dir, {
    nTrain: 0,
    nVal: 3,
    seed: 5,
    imageSize: 64,
    maxObjects: 2,
  });
  const data = join(dir, "val.jsonl");
  const tok = buildTokenizerFromRecords(await loadJsonl(data));
  const model = createTinyModel(tok.tokenizer, 3);
  const ckpt = join(dir, "checkpoint-0");
  await model.save(ckpt);
  model.dispose();
  await Deno.writeTextFile(join(ckpt, "tokenizer.json"), tok.json);
  return { ckpt, data };
}

Deno.test("stage2 eval: prints the summary and writes eval_summary.json, samples and overlays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-evalcli-" });
  try {
    const { ckpt, data } = await fixture(dir);
    const out = join(dir, "out");
    const r = await run([
      "eval",
      "--checkpoint",
      ckpt,
      "--data",
      data,
      "--out",
      out,
      "--max-new-tokens",
      "4",
      "--batch-size",
      "2",
      "--no-progress",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^eval @ step 0 on 3 images: parse .*P\/R\/F1@0\.5 .*AP .*AP50 .*mean IoU/,
    );
    assert.match(r.out, /box score: mean log-probability/);
    assert.match(r.out, /AP: COCO 101-point interpolated AP/);
    const s = JSON.parse(
      await Deno.readTextFile(join(out, "eval_summary.json")),
    );
    assert.equal(s.samples, 3);
    assert.equal(s.checkpoint, ckpt);
    assert.equal(s.rollout.batch_size, 2);
    assert.ok("ap" in s && "ap50" in s && "per_desc" in s);
    const lines = (await Deno.readTextFile(join(out, "eval_samples.jsonl")))
      .trim().split("\n");
    assert.equal(lines.length, 3);
    assert.equal([...Deno.readDirSync(join(out, "overlays"))].length, 3);
    // --json prints the same summary
    const j = await run([
      "eval",
      "--checkpoint",
      ckpt,
      "--data",
      data,
      "--out",
      out,
      "--max-new-tokens",
      "4",
      "--max-samples",
      "1",
      "--json",
      "--no-progress",
    ]);
    assert.equal(j.code, 0, j.err);
    assert.equal(JSON.parse(j.out).samples, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage2 eval: bad input is one line naming the file or record, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-evalcli-" });
  try {
    const { ckpt, data } = await fixture(dir);
    const records = (await Deno.readTextFile(data)).trim().split("\n");
    // a polygon in ground truth
    const poly = join(dir, "poly.jsonl");
    const rec = JSON.parse(records[1]);
    rec.objects[0] = { desc: "red circle", poly: [1, 2, 3, 4, 5, 6] };
    await Deno.writeTextFile(
      poly,
      [records[0], JSON.stringify(rec)].join("\n"),
    );
    // an image that does not decode
    const broken = join(dir, "broken.png");
    await Deno.writeTextFile(broken, "not a png");
    const badImg = join(dir, "badimg.jsonl");
    const r2 = JSON.parse(records[2]);
    r2.images = [broken];
    await Deno.writeTextFile(
      badImg,
      [records[0], JSON.stringify(r2)].join("\n"),
    );
    const noWeights = join(dir, "no-weights");
    await Deno.mkdir(noWeights);
    await Deno.copyFile(
      join(ckpt, "config.json"),
      join(noWeights, "config.json"),
    );
    await Deno.copyFile(
      join(ckpt, "tokenizer.json"),
      join(noWeights, "tokenizer.json"),
    );
    const base = ["--max-new-tokens", "2", "--out", join(dir, "o")];
    const cases: [string[], RegExp][] = [
      [
        ["eval", "--checkpoint", join(dir, "nope"), "--data", data],
        /--checkpoint .*nope: no config\.json there/,
      ],
      [
        ["eval", "--checkpoint", noWeights, "--data", data],
        /no-weights: no model\.safetensors there/,
      ],
      [
        ["eval", "--checkpoint", ckpt, "--data", join(dir, "missing.jsonl")],
        /--data .*missing\.jsonl: no such file/,
      ],
      [
        ["eval", "--checkpoint", ckpt, "--data", poly],
        /poly\.jsonl:2: objects\[0\]: "poly" geometry is not supported/,
      ],
      [
        ["eval", "--checkpoint", ckpt, "--data", badImg],
        /badimg\.jsonl:2: .*broken\.png is not a PNG file/,
      ],
      [
        ["eval", "--checkpoint", ckpt, "--data", data, "--max-samples", "0"],
        /--max-samples must be an integer >= 1/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await run([...args, ...base]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, re);
      assert.equal(r.err.trim().split("\n").length, 1, r.err);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
