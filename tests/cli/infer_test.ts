import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli as run } from "./_run.ts";
import { initRuntime } from "../../trainer/runtime.ts";
import { synthInMemory } from "../../trainer/data/synth.ts";
import { encodePngRgb } from "../../trainer/data/png.ts";
import { decodeSafetensors } from "../../trainer/model/safetensors.ts";
import {
  buildTokenizerFromRecords,
  createTinyModel,
} from "../../trainer/loop/setup.ts";

await initRuntime({ log: () => {} });

/** An untrained tiny checkpoint plus one synthetic PNG. */
async function fixture(dir: string): Promise<{ ckpt: string; image: string }> {
  const items = synthInMemory(4, 9, "train", { imageSize: 64, maxObjects: 2 });
  const tok = buildTokenizerFromRecords(items.map((i) => i.record));
  const model = createTinyModel(tok.tokenizer, 3);
  const ckpt = join(dir, "checkpoint-0");
  await model.save(ckpt);
  model.dispose();
  await Deno.writeTextFile(join(ckpt, "tokenizer.json"), tok.json);
  const image = join(dir, "img.png");
  await Deno.writeFile(image, encodePngRgb(items[0].image));
  return { ckpt, image };
}

Deno.test("stage2 infer --json --dump: detections JSON and a dump of the final full forward", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-infer-" });
  try {
    const { ckpt, image } = await fixture(dir);
    const dump = join(dir, "dump.safetensors");
    const r = await run([
      "infer",
      "--checkpoint",
      ckpt,
      "--image",
      image,
      "--max-new-tokens",
      "3",
      "--json",
      "--dump",
      dump,
    ]);
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.width, 64);
    assert.ok(j.newTokens >= 1 && j.newTokens <= 3);
    assert.equal(typeof j.answer, "string");
    assert.ok(Array.isArray(j.detections));
    const { tensors } = decodeSafetensors(await Deno.readFile(dump), dump);
    const ids = tensors.get("input_ids")!;
    const T = ids.shape[1];
    assert.deepEqual(tensors.get("position_ids")!.shape, [3, 1, T]);
    assert.deepEqual(
      tensors.get("image_grid_thw")!.data,
      Int32Array.from([1, 8, 8]),
    );
    assert.equal(tensors.get("pixel_values")!.shape[0], 64);
    const logits = tensors.get("logits")!;
    assert.equal(logits.shape[1], T);
    // greedy consistency: the first generated token is the argmax of the
    // full forward's logits at the last prompt position
    const V = logits.shape[2];
    const p = T - j.newTokens - 1;
    const row = logits.data.subarray(p * V, (p + 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    assert.equal(best, ids.data[p + 1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stage2 infer usage errors exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-infer-" });
  try {
    const img = join(dir, "x.png");
    await Deno.writeFile(img, new Uint8Array(4));
    const cases: [string[], RegExp | null][] = [
      [["infer", "--image", img], null], // missing --checkpoint
      [["infer", "--checkpoint", dir, "--image", img], /no config\.json/],
      [
        ["infer", "--checkpoint", dir, "--image", join(dir, "nope.png")],
        /no such file|config\.json/,
      ],
      [
        ["infer", "--checkpoint", dir, "--image", img, "--max-new-tokens", "0"],
        /--max-new-tokens must be an integer >= 1/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      if (re) assert.match(r.err, re);
    }
    const { ckpt, image } = await fixture(dir);
    const r = await run([
      "infer",
      "--checkpoint",
      ckpt,
      "--image",
      image,
      "--dump",
      "out.bin",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.err, /--dump must name a \.safetensors file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
