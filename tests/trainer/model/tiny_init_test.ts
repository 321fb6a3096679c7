import assert from "node:assert/strict";
import {
  applyGeometryInit,
  coordEmbeddingTable,
  dctPatchWeights,
  fourierFeatures,
  positionTable2d,
} from "../../../trainer/model/tiny_init.ts";
import { Qwen3VLForConditionalGeneration } from "../../../trainer/model/qwen3vl.ts";
import {
  createTinyModel,
  tokenizerFromFile,
} from "../../../trainer/loop/setup.ts";
import { initRuntime } from "../../../trainer/runtime.ts";

await initRuntime({ log: () => {} });

const cos = (a: Float32Array, b: Float32Array) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
};

Deno.test("Fourier coord embeddings: the requested RMS, neighbours alike, distant bins not", () => {
  const f = fourierFeatures(0.3, 128, 0.25, 64, 0.05);
  const rms = Math.sqrt(f.reduce((s, v) => s + v * v, 0) / f.length);
  assert.ok(Math.abs(rms - 0.05) < 1e-6, `rms ${rms}`);
  const t = coordEmbeddingTable(128, 0.05);
  const row = (k: number) => t.subarray(k * 128, (k + 1) * 128);
  assert.ok(cos(row(500), row(501)) > 0.9, "k and k+1 nearly equal");
  assert.ok(cos(row(500), row(800)) < 0.3, "far bins differ");
  assert.ok(cos(row(500), row(501)) > cos(row(500), row(510)));
});

Deno.test("2D position table: one distinct row per grid cell, row and column halves", () => {
  const side = 8, dim = 64;
  const t = positionTable2d(side, dim, 0.1);
  const cell = (r: number, c: number) =>
    t.subarray((r * side + c) * dim, (r * side + c + 1) * dim);
  // same row -> same first half; same column -> same second half
  assert.deepEqual(cell(3, 1).subarray(0, 32), cell(3, 6).subarray(0, 32));
  assert.deepEqual(cell(1, 5).subarray(32), cell(6, 5).subarray(32));
  assert.ok(cos(cell(3, 3), cell(3, 4)) > cos(cell(3, 3), cell(7, 0)));
});

Deno.test("DCT patch filters: column 0 is a channel's patch mean, columns orthogonal, extra columns kept", () => {
  const C = 3, tps = 2, ps = 8, inDim = C * tps * ps * ps, dim = 200;
  const base = new Float32Array(inDim * dim).fill(7);
  const w = dctPatchWeights(base, C, tps, ps, dim, 2);
  const col = (j: number) =>
    Float32Array.from({ length: inDim }, (_, i) => w[i * dim + j]);
  const c0 = col(0);
  // red channel entries (the first tps*ps*ps inputs) all equal, others zero
  const red = c0.subarray(0, tps * ps * ps);
  assert.ok(red.every((v) => Math.abs(v - red[0]) < 1e-6 && v > 0));
  assert.ok(c0.subarray(tps * ps * ps).every((v) => v === 0));
  assert.ok(Math.abs(Math.hypot(...c0) - 2) < 1e-5, "column norm");
  assert.ok(Math.abs(cos(col(0), col(3))) < 1e-6, "DC and first AC of red");
  assert.ok(Math.abs(cos(col(4), col(7))) < 1e-6);
  // 3 channels x 64 frequencies = 192 DCT columns; the rest untouched
  assert.equal(w[5 * dim + 199], 7);
  assert.notEqual(w[5 * dim + 191], 7);
});

Deno.test("the tiny preset's init rewrites the coord rows, the position table and the patch filters, nothing else", async () => {
  const { tokenizer: tok } = await tokenizerFromFile(
    new URL("../../fixtures/tokenizer/tiny_tokenizer.json", import.meta.url)
      .pathname,
  );
  const geo = createTinyModel(tok, 3);
  const plain = Qwen3VLForConditionalGeneration.create(geo.config, 3);
  try {
    const H = geo.config.text_config.hidden_size;
    const emb = geo.param("model.language_model.embed_tokens.weight")
      .dataSync() as Float32Array;
    const emb0 = plain.param("model.language_model.embed_tokens.weight")
      .dataSync() as Float32Array;
    const table = coordEmbeddingTable(H, 1);
    for (const k of [0, 1, 500, 999]) {
      const id = tok.coordIds[k];
      assert.ok(
        cos(
          emb.subarray(id * H, (id + 1) * H),
          table.subarray(k * H, (k + 1) * H),
        ) > 0.9999,
        `coord ${k}`,
      );
    }
    const other = tok.specialIds.imEnd;
    assert.deepEqual(
      emb.subarray(other * H, (other + 1) * H),
      emb0.subarray(other * H, (other + 1) * H),
    );
    for (
      const name of [
        "model.visual.blocks.0.attn.qkv.weight",
        "model.language_model.layers.0.self_attn.q_proj.weight",
      ]
    ) {
      assert.deepEqual(
        geo.param(name).dataSync(),
        plain.param(name).dataSync(),
        name,
      );
    }
    for (
      const name of [
        "model.visual.pos_embed.weight",
        "model.visual.patch_embed.proj.weight",
      ]
    ) {
      assert.notDeepEqual(
        geo.param(name).dataSync(),
        plain.param(name).dataSync(),
        name,
      );
    }
    assert.throws(
      () => applyGeometryInit(plain, tok.coordIds.slice(0, 10)),
      /needs the 1000 coord token ids, got 10/,
    );
  } finally {
    geo.dispose();
    plain.dispose();
  }
});
