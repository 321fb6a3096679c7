/**
 * One error taxonomy for every command: bad input or usage exits 2 with one
 * line naming the file, record or key; a failed run exits 1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";
import { initRuntime } from "../../trainer/runtime.ts";
import { synthInMemory } from "../../trainer/data/synth.ts";
import { encodePngRgb } from "../../trainer/data/png.ts";
import {
  buildTokenizerFromRecords,
  createTinyModel,
} from "../../trainer/loop/setup.ts";
import { buildTinyTokenizer } from "../../trainer/tokenizer/build.ts";
import { renderChatText } from "../../trainer/tokenizer/chat.ts";
import { exitCodeOf, InputError } from "../../trainer/errors.ts";

await initRuntime({ log: () => {} });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stage2-exit-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Exit 2 and exactly one printable line on stderr, matching `want`. */
function usage(r: { code: number; err: string }, want: RegExp): void {
  assert.equal(r.code, 2, r.err);
  assert.equal(r.err.split("\n").length, 1, r.err);
  assert.match(r.err, /^stage2: /);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(r.err, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  assert.match(r.err, want);
}

/** A small synthetic JSONL with real PNGs; `bad` replaces line `bad.line`. */
async function dataset(
  dir: string,
  n: number,
  bad?: { line: number; text?: string; image?: Uint8Array },
): Promise<string> {
  const items = synthInMemory(n, 3, "train", { imageSize: 64, maxObjects: 1 });
  await Deno.mkdir(join(dir, "img"), { recursive: true });
  const lines: string[] = [];
  for (const [i, it] of items.entries()) {
    const name = `img/${i}.png`;
    const png = bad?.line === i + 1 && bad.image
      ? bad.image
      : encodePngRgb(it.image);
    await Deno.writeFile(join(dir, name), png);
    lines.push(JSON.stringify({
      images: [name],
      width: 64,
      height: 64,
      objects: [{ desc: it.record.objects[0].desc, bbox_2d: [1, 2, 30, 40] }],
    }));
  }
  if (bad?.text !== undefined) lines[bad.line - 1] = bad.text;
  const path = join(dir, "train.jsonl");
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  return path;
}

async function config(dir: string, trainJsonl: string): Promise<string> {
  const path = join(dir, "cfg.yaml");
  await Deno.writeTextFile(
    path,
    [
      "data:",
      `  train_jsonl: ${trainJsonl}`,
      "training:",
      `  output_dir: ${join(dir, "run")}`,
      "  max_steps: 2",
      "  micro_batch_size: 2",
      "  gradient_accumulation_steps: 1",
      "  eval_steps: 0",
      "  trace: off",
      "",
    ].join("\n"),
  );
  return path;
}

Deno.test("taxonomy: input errors exit 2, failed runs 1, bugs 1; file errors count as input", () => {
  assert.equal(exitCodeOf(new InputError("x")), 2);
  assert.equal(exitCodeOf(new Deno.errors.NotFound("x")), 2);
  assert.equal(exitCodeOf(new TypeError("x")), 1);
});

Deno.test("the same bad JSONL exits 2 from `train` and from `data tokenizer`, with the same line", async () => {
  await withDir(async (dir) => {
    const jsonl = await dataset(dir, 3, {
      line: 2,
      text: '{"images": ["img/1.png"], "width": 64}',
    });
    const want = new RegExp(`${jsonl}:2: missing "height"`);
    const t = await run([
      "train",
      "--config",
      await config(dir, jsonl),
      "--no-progress",
    ]);
    usage(t, want);
    const k = await run([
      "data",
      "tokenizer",
      "--jsonl",
      jsonl,
      "--out",
      join(dir, "tok.json"),
    ]);
    usage(k, want);
    assert.equal(k.err, t.err);
  });
});

Deno.test("a bad image at record 6 fails before step 1, naming file:line and the image", async () => {
  await withDir(async (dir) => {
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 74, 70, 73]);
    const jsonl = await dataset(dir, 8, { line: 6, image: jpeg });
    const r = await run([
      "train",
      "--config",
      await config(dir, jsonl),
      "--no-progress",
    ]);
    usage(
      r,
      new RegExp(`${jsonl}:6: .*img/5\\.png is a JPEG file, not a PNG`),
    );
    const ran = await Deno.stat(join(dir, "run", "metrics.jsonl")).then(
      () => true,
      () => false,
    );
    assert.equal(ran, false, "no step ran");
  });
});

Deno.test("a damaged first image is reported as a data error, not a packing problem", async () => {
  await withDir(async (dir) => {
    const items = synthInMemory(1, 5, "train", { imageSize: 64 });
    const png = encodePngRgb(items[0].image);
    // Same length and chunk structure, scrambled compressed pixel data.
    const idat = png.findIndex((_, i) =>
      String.fromCharCode(...png.subarray(i, i + 4)) === "IDAT"
    );
    const broken = png.slice();
    for (let i = idat + 6; i < idat + 40; i++) broken[i] ^= 0x5a;
    const jsonl = await dataset(dir, 3, { line: 1, image: broken });
    const r = await run([
      "train",
      "--config",
      await config(dir, jsonl),
      "--no-progress",
    ]);
    // Headers are checked up front; pixel data is decoded at first use, so
    // the run's start-up log line may precede the one error line.
    const last = r.err.split("\n").at(-1)!;
    usage(
      { code: r.code, err: last },
      new RegExp(`${jsonl}:1: PNG .*img/0\\.png is damaged`),
    );
    assert.doesNotMatch(r.err, /packing/);
  });
});

Deno.test("`data tokenizer --out DIR` and `data synth --out FILE` are usage errors", async () => {
  await withDir(async (dir) => {
    const jsonl = await dataset(dir, 2);
    usage(
      await run(["data", "tokenizer", "--jsonl", jsonl, "--out", dir]),
      /--out .* is a folder; name the file to write, e.g\. .*\/tokenizer\.json/,
    );
    usage(
      await run(["data", "synth", "--out", jsonl, "--n-train", "1"]),
      /--out .*train\.jsonl is a file; data synth writes a folder/,
    );
  });
});

Deno.test("`data synth --out` refuses a non-empty folder; --overwrite replaces only its own dataset", async () => {
  await withDir(async (dir) => {
    const out = join(dir, "shapes");
    const synth = (n: number, ...extra: string[]) =>
      run([
        "data",
        "synth",
        "--out",
        out,
        "--n-train",
        String(n),
        "--n-val",
        "1",
        "--size",
        "32",
        ...extra,
      ]);
    assert.equal((await synth(4)).code, 0);
    await Deno.writeTextFile(join(out, "README.txt"), "my notes");
    usage(
      await synth(2),
      /--out .*shapes is not empty .*pass --overwrite to replace a dataset data synth wrote there/,
    );
    const again = await synth(2, "--overwrite");
    assert.equal(again.code, 0, again.err);
    assert.match(again.err, /kept 1 file\(s\) .*README\.txt/);
    const images = [...Deno.readDirSync(join(out, "images"))].map((e) => e.name)
      .sort();
    // no stale train_00002.png / train_00003.png from the first dataset
    assert.deepEqual(images, [
      "train_00000.png",
      "train_00001.png",
      "val_00000.png",
    ]);
    assert.equal(await Deno.readTextFile(join(out, "README.txt")), "my notes");
    // --overwrite never mixes into a folder data synth did not write
    const other = join(dir, "other");
    await Deno.mkdir(other);
    await Deno.writeTextFile(join(other, "train.jsonl"), "mine\n");
    usage(
      await run(["data", "synth", "--out", other, "--overwrite"]),
      /holds no dataset written by data synth \(no synth\.json\)/,
    );
    assert.equal(await Deno.readTextFile(join(other, "train.jsonl")), "mine\n");
  });
});

Deno.test("binary bytes in a bad config are escaped, never echoed raw", async () => {
  await withDir(async (dir) => {
    // a key made of control bytes and an invalid UTF-8 byte
    const f = join(dir, "bin.yaml");
    await Deno.writeFile(
      f,
      new Uint8Array([
        ...new TextEncoder().encode("training:\n  "),
        0x01,
        0x1b,
        0x5b,
        0x32,
        0x4a,
        0xff,
        ...new TextEncoder().encode(": 1\n"),
      ]),
    );
    const r = await run(["train", "--config", f]);
    assert.equal(r.code, 2, r.err);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(r.err, /[\u0001\u001b\ufffd]/);
    assert.match(
      r.err,
      /unknown key training\.\\x01\\x1b\[2J\\ufffd \(.*bin\.yaml:2\)/,
    );
  });
});

/** An untrained tiny checkpoint plus one PNG (the infer fixture). */
async function checkpoint(dir: string) {
  const items = synthInMemory(4, 9, "train", { imageSize: 64, maxObjects: 2 });
  const tok = buildTokenizerFromRecords(items.map((i) => i.record));
  const model = createTinyModel(tok.tokenizer, 3);
  const ckpt = join(dir, "checkpoint-0");
  await model.save(ckpt);
  await Deno.writeTextFile(join(ckpt, "tokenizer.json"), tok.json);
  const image = join(dir, "img.png");
  await Deno.writeFile(image, encodePngRgb(items[0].image));
  return { ckpt, image, model };
}

Deno.test("infer: bad checkpoints, images and limits exit 2 with a clear line", async () => {
  await withDir(async (dir) => {
    const { ckpt, image, model } = await checkpoint(dir);
    const infer = (...extra: string[]) =>
      run(["infer", "--checkpoint", ckpt, "--image", image, ...extra]);
    usage(
      await infer("--max-new-tokens", "1000000"),
      /--max-new-tokens is 1000000, more than the model's context length \d+/,
    );
    // a JPEG named .png
    const jpeg = join(dir, "photo.png");
    await Deno.writeFile(jpeg, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1]));
    usage(
      await run(["infer", "--checkpoint", ckpt, "--image", jpeg]),
      /photo\.png is a JPEG file, not a PNG/,
    );
    // the tokenizer of another model next to the checkpoint
    const texts = ["x", "y"].map((d) =>
      renderChatText([{ desc: d, bbox_2d: [0, 0, 1, 1] }], 1)
    );
    const goodTok = await Deno.readTextFile(join(ckpt, "tokenizer.json"));
    await Deno.writeTextFile(
      join(ckpt, "tokenizer.json"),
      JSON.stringify(buildTinyTokenizer(texts, { vocabSize: 300 })),
    );
    usage(await infer(), /tokenizer does not match the model: /);
    await Deno.writeTextFile(join(ckpt, "tokenizer.json"), goodTok);
    // a damaged model.safetensors
    const weights = join(ckpt, "model.safetensors");
    const bytes = await Deno.readFile(weights);
    await Deno.writeFile(weights, bytes.slice(0, 100));
    usage(await infer(), /checkpoint .*checkpoint-0: cannot load the model/);
    // non-finite weights
    const name = model.paramNames()[0];
    const v = model.param(name);
    const vals = v.dataSync().slice();
    vals[3] = NaN;
    v.assign(
      (await import("../../trainer/runtime.ts")).tf.tensor(vals, v.shape),
    );
    await model.save(ckpt);
    model.dispose();
    usage(
      await infer(),
      new RegExp(
        `the weights are not finite \\(${name} holds NaN at index 3\\)`,
      ),
    );
  });
});

/** Overwrites the tensor data of a safetensors file with NaN bytes (same size, valid header). */
async function nanData(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  bytes.fill(0xff, 8 + hlen);
  await Deno.writeFile(path, bytes);
}

Deno.test("train: a model.checkpoint that does not load and a damaged optimizer state on resume exit 2 naming the file", async () => {
  await withDir(async (dir) => {
    const cfg = await config(dir, await dataset(dir, 4));
    const train = (...extra: string[]) =>
      run(["train", "--config", cfg, "--no-progress", ...extra]);

    const { ckpt, model } = await checkpoint(dir);
    model.dispose();
    const weights = join(ckpt, "model.safetensors");
    await Deno.writeFile(weights, (await Deno.readFile(weights)).slice(0, 100));
    usage(
      await train("--set", `model.checkpoint=${ckpt}`),
      /checkpoint .*checkpoint-0: cannot load the model/,
    );

    const out = `training.output_dir=${join(dir, "run2")}`;
    const first = await train("--set", out, "--set", "training.save_steps=1");
    assert.equal(first.code, 0, first.err);
    // correctly sized, valid header, garbage moments: the folder check passes
    await nanData(join(dir, "run2", "checkpoint-2", "optimizer.safetensors"));
    const r = await train(
      "--set",
      out,
      "--set",
      "training.max_steps=3",
      "--resume",
    );
    const last = r.err.split("\n").at(-1)!; // after the "resuming from" note
    usage(
      { code: r.code, err: last },
      /checkpoint-2\/optimizer\.safetensors: damaged optimizer state \(tensor .* holds NaN at index 0\); resume from an earlier checkpoint/,
    );
  });
});
