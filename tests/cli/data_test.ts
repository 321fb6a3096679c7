import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";
import { loadJsonl } from "../../trainer/data/jsonl.ts";
import { buildTinyTokenizer } from "../../trainer/tokenizer/build.ts";
import { renderChatText } from "../../trainer/tokenizer/chat.ts";

Deno.test("stage2 data synth writes a dataset the loader accepts; stage2 data tokenizer builds from it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await run([
      "data",
      "synth",
      "--out",
      dir,
      "--n-train",
      "5",
      "--n-val",
      "2",
      "--seed",
      "4",
      "--size",
      "32",
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote 5 train \+ 2 val images \(32x32, seed 4\)/);
    const train = await loadJsonl(join(dir, "train.jsonl"));
    assert.equal(train.length, 5);
    assert.equal(train[0].width, 32);
    assert.equal((await loadJsonl(join(dir, "val.jsonl"))).length, 2);

    const tokPath = join(dir, "tok", "tokenizer.json");
    const t = await run([
      "data",
      "tokenizer",
      "--jsonl",
      join(dir, "train.jsonl"),
      join(dir, "val.jsonl"),
      "--out",
      tokPath,
      "--vocab-size",
      "300",
    ]);
    assert.equal(t.code, 0, t.err);
    const tok = JSON.parse(await Deno.readTextFile(tokPath));
    const added: string[] = tok.added_tokens.map((a: { content: string }) =>
      a.content
    );
    assert.ok(
      added.includes("<|coord_999|>") && added.includes("<|image_pad|>"),
    );
    // same corpus as the trainer's built-in tokenizer: train + val chat texts
    const val = await loadJsonl(join(dir, "val.jsonl"));
    const texts = [...train, ...val].map((r) => renderChatText(r.objects, 1));
    assert.deepEqual(tok, buildTinyTokenizer(texts, { vocabSize: 300 }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage2 data rejects bad arguments and bad records with a one-line error, exit 2", async () => {
  const bad = await run(["data", "synth", "--out", "/tmp/x", "--size", "48"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^stage2: --size must be a multiple of 32/);
  const nan = await run([
    "data",
    "synth",
    "--out",
    "/tmp/x",
    "--n-train",
    "many",
  ]);
  assert.equal(nan.code, 2);
  assert.match(
    nan.err,
    /^stage2: --n-train must be an integer >= 0, got "many"$/,
  );

  const dir = await Deno.makeTempDir();
  try {
    const f = join(dir, "bad.jsonl");
    await Deno.writeTextFile(
      f,
      `{"images": ["a.png"], "height": 4, "objects": []}\n`,
    );
    const r = await run([
      "data",
      "tokenizer",
      "--jsonl",
      f,
      "--out",
      join(dir, "t.json"),
    ]);
    assert.equal(r.code, 2);
    assert.equal(
      r.err,
      `stage2: ${f}:1: missing "width" (image width in pixels is required)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
