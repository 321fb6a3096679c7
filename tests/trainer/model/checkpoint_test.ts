import assert from "node:assert/strict";
import { join } from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  Qwen3VLForConditionalGeneration,
  readCheckpointTensors,
  saveCheckpoint,
} from "../../../trainer/model/mod.ts";
import {
  checkpointEntries,
  writeRandomCheckpoint,
} from "../../../trainer/model/checkpoint.ts";
import { bf16Bits } from "../../../trainer/model/safetensors.ts";
import { tinyModel } from "./helpers.ts";

function sameWeights(
  a: Qwen3VLForConditionalGeneration,
  b: Qwen3VLForConditionalGeneration,
): void {
  assert.deepEqual(a.specs.map((s) => s.name), b.specs.map((s) => s.name));
  for (const s of a.specs) {
    const x = new Uint32Array(
      (a.param(s.name).dataSync() as Float32Array).slice().buffer,
    );
    const y = new Uint32Array(
      (b.param(s.name).dataSync() as Float32Array).slice().buffer,
    );
    assert.deepEqual(x, y, s.name);
  }
}

Deno.test("save -> load round-trips every weight bitwise (single file and shards)", async () => {
  const m = await tinyModel(3);
  const dir = await Deno.makeTempDir();
  try {
    await m.save(dir);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["config.json", "model.safetensors"]);
    const back = await Qwen3VLForConditionalGeneration.load(dir);
    assert.deepEqual(back.config, m.config);
    sameWeights(m, back);
    // HF layout on disk: q_proj is [out, in]
    const t = await readCheckpointTensors(dir);
    assert.deepEqual(
      t.get("model.language_model.layers.0.self_attn.q_proj.weight")!.shape,
      [128, 128],
    );
    assert.deepEqual(t.get("model.visual.patch_embed.proj.weight")!.shape, [
      64,
      3,
      2,
      8,
      8,
    ]);

    await saveCheckpoint(m, dir, { maxShardBytes: 400_000 });
    const index = JSON.parse(
      await Deno.readTextFile(join(dir, "model.safetensors.index.json")),
    );
    const shards = new Set(Object.values(index.weight_map));
    assert.ok(shards.size > 1);
    assert.ok(
      ![...Deno.readDirSync(dir)].some((e) => e.name === "model.safetensors"),
      "stale single file removed",
    );
    sameWeights(m, await Qwen3VLForConditionalGeneration.load(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loading reports dropped, renamed and mis-shaped tensors by name", async () => {
  const m = await tinyModel(3);
  const dir = await Deno.makeTempDir();
  try {
    await m.save(dir);
    const path = join(dir, "model.safetensors");
    const { tensors } = decodeSafetensors(await Deno.readFile(path), path);
    const entries = [...tensors.entries()].map(([k, v]) =>
      [k, { shape: v.shape, data: v.data }] as [
        string,
        { shape: number[]; data: Float32Array },
      ]
    );
    type Entry = [string, { shape: number[]; data: Float32Array }];
    const broken = entries
      .filter(([k]) => k !== "model.language_model.norm.weight")
      .map(([k, v]): Entry =>
        k === "model.visual.merger.linear_fc2.bias"
          ? ["model.visual.merger.fc2.bias", v]
          : [k, v]
      )
      .map(([k, v]): Entry =>
        k === "model.language_model.layers.1.mlp.up_proj.weight"
          ? [k, { shape: [v.shape[1], v.shape[0]], data: v.data }]
          : [k, v]
      );
    await Deno.writeFile(path, encodeSafetensors(broken));
    await assert.rejects(
      () => Qwen3VLForConditionalGeneration.load(dir),
      (e: Error) => {
        assert.match(
          e.message,
          /missing: [^;]*model\.language_model\.norm\.weight/,
        );
        assert.match(
          e.message,
          /missing: [^;]*model\.visual\.merger\.linear_fc2\.bias/,
        );
        assert.match(e.message, /unexpected: model\.visual\.merger\.fc2\.bias/);
        assert.match(
          e.message,
          /mis-shaped: model\.language_model\.layers\.1\.mlp\.up_proj\.weight \[128,384\] \(expected \[384,128\]\)/,
        );
        return true;
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors reads F16 and BF16 as float32", () => {
  // header with one F16 and one BF16 tensor of two values each
  const header = JSON.stringify({
    a: { dtype: "F16", shape: [2], data_offsets: [0, 4] },
    b: { dtype: "BF16", shape: [2], data_offsets: [4, 8] },
  });
  const hb = new TextEncoder().encode(header);
  const buf = new Uint8Array(8 + hb.length + 8);
  const dv = new DataView(buf.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  buf.set(hb, 8);
  const at = 8 + hb.length;
  dv.setUint16(at, 0x3c00, true); // f16 1.0
  dv.setUint16(at + 2, 0xc500, true); // f16 -5.0
  dv.setUint16(at + 4, 0x3fc0, true); // bf16 1.5
  dv.setUint16(at + 6, 0xc120, true); // bf16 -10
  const { tensors } = decodeSafetensors(buf, "mem");
  assert.deepEqual([...tensors.get("a")!.data], [1, -5]);
  assert.deepEqual([...tensors.get("b")!.data], [1.5, -10]);
  assert.throws(
    () => decodeSafetensors(buf.subarray(0, buf.length - 2), "cut.safetensors"),
    /cut\.safetensors: tensor b/,
  );
});

Deno.test("bf16 rounding: nearest, ties to even, NaN and infinities kept", () => {
  const bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];
  const back = (b: number) =>
    new Float32Array(Uint32Array.of(b << 16).buffer)[0];
  assert.equal(back(bf16Bits(bits(1.5))), 1.5);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1)
  assert.equal(back(bf16Bits(bits(1 + 2 ** -8))), 1);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even (1 + 2^-6)
  assert.equal(back(bf16Bits(bits(1 + 3 * 2 ** -8))), 1 + 2 ** -6);
  assert.equal(back(bf16Bits(bits(1 + 2 ** -8 + 2 ** -12))), 1 + 2 ** -7);
  assert.equal(back(bf16Bits(bits(-Infinity))), -Infinity);
  assert.ok(Number.isNaN(back(bf16Bits(bits(NaN)))));
});

Deno.test("a random checkpoint written tensor by tensor equals create(seed); bf16 shards load with an index", async () => {
  const cfg = (await tinyModel(5)).config;
  const dir = await Deno.makeTempDir();
  try {
    await writeRandomCheckpoint(cfg, join(dir, "f32"), 5);
    sameWeights(
      Qwen3VLForConditionalGeneration.create(cfg, 5),
      await Qwen3VLForConditionalGeneration.load(join(dir, "f32")),
    );
    await writeRandomCheckpoint(cfg, join(dir, "bf16"), 5, {
      dtype: "BF16",
      maxShardBytes: 300_000,
    });
    const index = JSON.parse(
      await Deno.readTextFile(
        join(dir, "bf16", "model.safetensors.index.json"),
      ),
    );
    assert.ok(new Set(Object.values(index.weight_map)).size > 1);
    const entries = await checkpointEntries(join(dir, "bf16"));
    assert.ok([...entries.values()].every((e) => e.dtype === "BF16"));
    const ref = Qwen3VLForConditionalGeneration.create(cfg, 5);
    const got = await Qwen3VLForConditionalGeneration.load(join(dir, "bf16"));
    for (const s of ref.specs) {
      const a = ref.param(s.name).dataSync() as Float32Array;
      const b = got.param(s.name).dataSync() as Float32Array;
      const ab = new Uint32Array(a.slice().buffer);
      const bb = new Uint32Array(b.slice().buffer);
      for (let i = 0; i < a.length; i++) {
        assert.equal(bb[i], (bf16Bits(ab[i]) << 16) >>> 0, `${s.name}[${i}]`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
