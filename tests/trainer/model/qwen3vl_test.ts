import assert from "node:assert/strict";
import { tf } from "../../../trainer/runtime.ts";
import {
  type ForwardTraceInfo,
  packedPositionIds,
  Qwen3VLForConditionalGeneration,
  tinyConfig,
} from "../../../trainer/model/mod.ts";
import {
  IDS,
  image,
  maxAbsDiff,
  promptIds,
  tinyModel,
  VOCAB,
} from "./helpers.ts";

let shared: Qwen3VLForConditionalGeneration | undefined;
async function model(): Promise<Qwen3VLForConditionalGeneration> {
  return shared ??= await tinyModel();
}

function ids2d(rows: Int32Array[]): tf.Tensor2D {
  const t = rows[0].length;
  const flat = new Int32Array(rows.length * t);
  rows.forEach((r, i) => flat.set(r, i * t));
  return tf.tensor2d(flat, [rows.length, t], "int32");
}

function logitsOf(
  m: Qwen3VLForConditionalGeneration,
  args: Parameters<Qwen3VLForConditionalGeneration["forward"]>[0],
) {
  const out = m.forward(args);
  const d = out.logits.dataSync().slice() as Float32Array;
  out.logits.dispose();
  return d;
}

/** Two samples packed in one row with 4-row position ids. */
function packed(m: Qwen3VLForConditionalGeneration) {
  const a = promptIds(1, 2, 9), b = promptIds(2, 4, 5);
  const pos = packedPositionIds(m.config, [
    { inputIds: a, imageGridThw: [[1, 8, 8]] },
    { inputIds: b, imageGridThw: [[1, 8, 8]] },
  ]);
  const row = new Int32Array(a.length + b.length);
  row.set(a);
  row.set(b, a.length);
  return { a, b, row, pos };
}

Deno.test("packed row gives each segment the logits it gets alone (no cross-segment leakage)", async () => {
  const m = await model();
  const { a, b, row, pos } = packed(m);
  const imgA = image(11), imgB = image(12);
  const both = tf.concat([imgA, imgB]) as tf.Tensor2D;
  const T = row.length;
  const full = logitsOf(m, {
    inputIds: ids2d([row]),
    pixelValues: both,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
    positionIds: tf.tensor3d(pos, [4, 1, T], "int32"),
  });
  const alone = (ids: Int32Array, img: tf.Tensor2D) =>
    logitsOf(m, {
      inputIds: ids2d([ids]),
      pixelValues: img,
      imageGridThw: [[1, 8, 8]],
    });
  const la = alone(a, imgA), lb = alone(b, imgB);
  assert.ok(maxAbsDiff(full.subarray(0, a.length * VOCAB), la) < 1e-4);
  assert.ok(maxAbsDiff(full.subarray(a.length * VOCAB), lb) < 1e-4);

  // corrupt row 0 so it does not restart at the second sample: one segment,
  // the second sample now sees the first and its logits change
  const bad = pos.slice();
  for (let i = a.length; i < T; i++) bad[i] = i;
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  const merged = logitsOf(m, {
    inputIds: ids2d([row]),
    pixelValues: both,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
    positionIds: tf.tensor3d(bad, [4, 1, T], "int32"),
  });
  m.setTracer(undefined);
  assert.deepEqual(seen[0].attentionSegments, [[[0, T]]]);
  assert.ok(
    maxAbsDiff(merged.subarray(0, a.length * VOCAB), la) < 1e-4,
    "first segment unaffected",
  );
  assert.ok(
    maxAbsDiff(merged.subarray(a.length * VOCAB), lb) > 1e-3,
    "leakage into the second segment is visible",
  );
});

Deno.test("inputsEmbeds path equals inputIds path bitwise, placeholders found by equality", async () => {
  const m = await model();
  const ids = ids2d([promptIds(3), promptIds(4)]);
  const px = tf.concat([image(1), image(2)]) as tf.Tensor2D;
  const grids = [[1, 8, 8], [1, 8, 8]];
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  const viaIds = logitsOf(m, {
    inputIds: ids,
    pixelValues: px,
    imageGridThw: grids,
  });
  const emb = m.embedTokens(ids);
  const viaEmb = logitsOf(m, {
    inputsEmbeds: emb,
    pixelValues: px,
    imageGridThw: grids,
  });
  m.setTracer(undefined);
  assert.deepEqual(
    new Uint32Array(viaEmb.buffer),
    new Uint32Array(viaIds.buffer),
  );
  assert.equal(seen[0].inputKind, "input_ids");
  assert.equal(seen[1].inputKind, "inputs_embeds");
  assert.equal(seen[1].placeholderRows, 32);
  assert.equal(seen[1].visualFeatures, 32);
  assert.equal(seen[1].placeholderBitwiseEqual, true);
  assert.deepEqual(seen[1].mrope, seen[0].mrope);
});

Deno.test("placeholder count mismatch is an error (ids and embeddings)", async () => {
  const m = await model();
  const p = promptIds(5);
  const extra = Int32Array.from([...p, IDS.imageTokenId]);
  assert.throws(
    () =>
      m.forward({
        inputIds: ids2d([extra]),
        pixelValues: image(1),
        imageGridThw: [[1, 8, 8]],
      }),
    /17 image placeholder row\(s\).*16 visual feature/,
  );
  assert.throws(
    () => m.forward({ inputIds: ids2d([p]) }),
    /16 image placeholder row\(s\).*0 visual feature/,
  );
  // an embedding whose placeholder row was overwritten no longer matches
  const emb = m.embedTokens(ids2d([p]));
  const data = emb.dataSync().slice();
  data[5 * 128] += 1; // row 5 is an <|image_pad|>
  const touched = tf.tensor3d(data, emb.shape);
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  assert.throws(
    () =>
      m.forward({
        inputsEmbeds: touched,
        pixelValues: image(1),
        imageGridThw: [[1, 8, 8]],
      }),
    /15 image placeholder row\(s\).*bitwise equality.*16 visual feature/,
  );
  m.setTracer(undefined);
  assert.equal(seen[0].placeholderBitwiseEqual, false);
});

Deno.test("unknown forward arguments and input exclusivity are errors", async () => {
  const m = await model();
  const ids = ids2d([Int32Array.from([10, 11, 12])]);
  assert.throws(
    () =>
      m.forward(
        { inputIds: ids, labels: ids } as unknown as Parameters<
          typeof m.forward
        >[0],
      ),
    /unknown argument\(s\) labels/,
  );
  assert.throws(() => m.forward({}), /exactly one of inputIds or inputsEmbeds/);
  assert.throws(
    () => m.forward({ inputIds: ids, inputsEmbeds: m.embedTokens(ids) }),
    /exactly one/,
  );
});

Deno.test("logitsToKeep returns the last positions; training forwards return no cache", async () => {
  const m = await model();
  const ids = ids2d([promptIds(6)]);
  const px = image(3);
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  const full = m.forward({
    inputIds: ids,
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
  });
  const last = m.forward({
    inputIds: ids,
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
    logitsToKeep: 3,
  });
  m.setTracer(undefined);
  const T = ids.shape[1];
  assert.deepEqual(last.logits.shape, [1, 3, VOCAB]);
  assert.equal(full.pastKeyValues, null);
  assert.ok(
    maxAbsDiff(
      full.logits.dataSync().subarray((T - 3) * VOCAB),
      last.logits.dataSync(),
    ) < 1e-5,
  );
  assert.equal(seen[0].logitsLen, T);
  assert.equal(seen[1].logitsLen, 3);
  assert.equal(seen[0].returnedPast, false);
  assert.throws(
    () =>
      m.forward({
        inputIds: ids,
        pixelValues: px,
        imageGridThw: [[1, 8, 8]],
        logitsToKeep: T + 1,
      }),
    /logitsToKeep/,
  );
});

Deno.test("gradients reach every parameter on this backend (embedding included)", async () => {
  const m = await model();
  const ids = ids2d([promptIds(8)]);
  const px = image(4);
  const { value, grads } = tf.variableGrads(() => {
    const o = m.forward({
      inputIds: ids,
      pixelValues: px,
      imageGridThw: [[1, 8, 8]],
    });
    return tf.mean(tf.square(o.logits)) as tf.Scalar;
  });
  assert.ok(Number.isFinite(value.dataSync()[0]));
  const zero = m.trainableVariables().filter((v) =>
    !(tf.norm(grads[v.name]).dataSync()[0] > 0)
  ).map((v) => v.name);
  assert.deepEqual(zero, []);
  tf.dispose([value, ...Object.values(grads)]);
});

Deno.test("long packed rows (several attention groups, two rows) match per-segment logits", async () => {
  const m = await model();
  const lens = [[120, 100, 90], [200, 70, 40]];
  const segs = lens.map((row, r) =>
    row.map((n, k) =>
      Int32Array.from(
        { length: n },
        (_, i) => 10 + ((i * 7 + k * 13 + r * 5) % 80),
      )
    )
  );
  const T = 310;
  const ids = new Int32Array(2 * T), pos = new Int32Array(4 * 2 * T);
  segs.forEach((row, r) => {
    const p = packedPositionIds(
      m.config,
      row.map((s) => ({ inputIds: s, imageGridThw: [] })),
    );
    let off = 0;
    for (const s of row) {
      ids.set(s, r * T + off);
      off += s.length;
    }
    for (let a = 0; a < 4; a++) {
      pos.set(p.subarray(a * T, (a + 1) * T), (a * 2 + r) * T);
    }
  });
  const full = logitsOf(m, {
    inputIds: tf.tensor2d(ids, [2, T], "int32"),
    positionIds: tf.tensor3d(pos, [4, 2, T], "int32"),
  });
  segs.forEach((row, r) => {
    let off = 0;
    for (const s of row) {
      const alone = logitsOf(m, { inputIds: ids2d([s]) });
      const got = full.subarray(
        (r * T + off) * VOCAB,
        (r * T + off + s.length) * VOCAB,
      );
      assert.ok(maxAbsDiff(got, alone) < 1e-4, `row ${r} segment at ${off}`);
      off += s.length;
    }
  });
});

Deno.test("inference forwards see weight updates (fused-weight cache follows Variable.assign)", async () => {
  const m = await tinyModel(9);
  const ids = ids2d([Int32Array.from([10, 11, 12, 13, 14, 15])]);
  const before = logitsOf(m, { inputIds: ids });
  const name = "model.language_model.layers.0.self_attn.k_proj.weight";
  const v = m.param(name);
  v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", 1));
  const after = logitsOf(m, { inputIds: ids });
  assert.ok(maxAbsDiff(before, after) > 1e-4, "stale fused weights were used");
  // a taped forward builds the fused weights from the variables themselves
  let taped: Float32Array | undefined;
  const { grads, value } = tf.variableGrads(() => {
    const o = m.forward({ inputIds: ids });
    taped = o.logits.dataSync().slice() as Float32Array;
    return tf.sum(o.logits) as tf.Scalar;
  });
  tf.dispose([value, ...Object.values(grads)]);
  assert.ok(maxAbsDiff(after, taped!) < 1e-6);
  m.dispose();
});

Deno.test("one kv head, one vision head, one row: the taped forward still differentiates", async () => {
  await tinyModel(); // runtime
  const cfg = tinyConfig(VOCAB, IDS);
  Object.assign(cfg.text_config, {
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 32,
    num_hidden_layers: 1,
  });
  Object.assign(cfg.vision_config, { num_heads: 1 });
  const m = Qwen3VLForConditionalGeneration.create(cfg, 2);
  // long enough for the chunked (rank-2 per row and kv head) attention path
  const ids = ids2d([Int32Array.from([...promptIds(9, 20, 60)])]);
  const { value, grads } = tf.variableGrads(() =>
    tf.sum(
      m.forward({
        inputIds: ids,
        pixelValues: image(5),
        imageGridThw: [[1, 8, 8]],
      }).logits,
    ) as tf.Scalar
  );
  assert.ok(Number.isFinite(value.dataSync()[0]));
  assert.equal(Object.keys(grads).length, m.trainableVariables().length);
  tf.dispose([value, ...Object.values(grads)]);
  m.dispose();
});

Deno.test("under a gradient tape, a KV cache or sliced logits are refused", async () => {
  const m = await model();
  const ids = ids2d([Int32Array.from([10, 11, 12, 13])]);
  const taped = (args: Parameters<typeof m.forward>[0]) => () =>
    tf.variableGrads(() => tf.sum(m.forward(args).logits) as tf.Scalar);
  assert.throws(
    taped({ inputIds: ids, useCache: true }),
    /useCache\/pastKeyValues are for generation only/,
  );
  assert.throws(
    taped({ inputIds: ids, logitsToKeep: 1 }),
    /logitsToKeep is for inference only/,
  );
  // full logits (logitsToKeep 0 = all) are fine
  const { value, grads } = taped({ inputIds: ids, logitsToKeep: 0 })();
  tf.dispose([value, ...Object.values(grads)]);
});
