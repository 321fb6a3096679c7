import assert from "node:assert/strict";
import { tf } from "../../../trainer/runtime.ts";
import { argmax, type ForwardTraceInfo } from "../../../trainer/model/mod.ts";
import { IDS, image, promptIds, tinyModel, VOCAB } from "./helpers.ts";

Deno.test("KV-cached batched greedy equals the argmax of a full non-cached forward at every step", async () => {
  const m = await tinyModel(5);
  // prompts of different lengths: the shorter one is left-padded in the batch
  const prompts = [promptIds(21, 2, 4), promptIds(22, 5, 7)];
  const imgs = [image(31), image(32)];
  const seen: ForwardTraceInfo[] = [];
  m.setTracer((r) => seen.push(r));
  const res = await m.generate({
    prompts,
    pixelValues: tf.concat(imgs) as tf.Tensor2D,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
    maxNewTokens: 6,
    mode: "greedy",
    stopTokenIds: [VOCAB + 1], // unreachable: run all steps
  });
  m.setTracer(undefined);
  assert.ok(
    seen.length >= 2 &&
      seen.slice(1).every((r) => r.cacheIn && r.useCache && r.seqLen === 1),
  );
  for (const [b, p] of prompts.entries()) {
    assert.equal(res.tokens[b].length, 6);
    for (let step = 0; step < 6; step++) {
      const seq = Int32Array.from([...p, ...res.tokens[b].subarray(0, step)]);
      const out = m.forward({
        inputIds: tf.tensor2d(seq, [1, seq.length], "int32"),
        pixelValues: imgs[b],
        imageGridThw: [[1, 8, 8]],
      });
      const last = (out.logits.dataSync() as Float32Array).slice(
        (seq.length - 1) * VOCAB,
      );
      out.logits.dispose();
      assert.equal(
        res.tokens[b][step],
        argmax(last),
        `prompt ${b} step ${step}`,
      );
    }
  }
});

Deno.test("generate returns each chosen token's log-probability: log-softmax of the full forward's logits", async () => {
  const m = await tinyModel(5);
  const p = promptIds(23, 3, 5);
  const px = image(33);
  for (const mode of ["greedy", "sample"] as const) {
    const res = await m.generate({
      prompts: [p],
      pixelValues: px,
      imageGridThw: [[1, 8, 8]],
      maxNewTokens: 4,
      mode,
      temperature: 1.7, // sampling draws from a tempered distribution,
      seeds: [3], // but the reported log-prob is the model's own
      stopTokenIds: [VOCAB + 1],
    });
    assert.equal(res.logprobs[0].length, res.tokens[0].length);
    for (let step = 0; step < 4; step++) {
      const seq = Int32Array.from([...p, ...res.tokens[0].subarray(0, step)]);
      const out = m.forward({
        inputIds: tf.tensor2d(seq, [1, seq.length], "int32"),
        pixelValues: px,
        imageGridThw: [[1, 8, 8]],
      });
      const last = (out.logits.dataSync() as Float32Array).slice(
        (seq.length - 1) * VOCAB,
      );
      out.logits.dispose();
      const mx = Math.max(...last);
      const lse = mx + Math.log(last.reduce((z, v) => z + Math.exp(v - mx), 0));
      const want = last[res.tokens[0][step]] - lse;
      assert.ok(
        want <= 0 && Math.abs(res.logprobs[0][step] - want) < 1e-4,
        `${mode} step ${step}: ${res.logprobs[0][step]} vs ${want}`,
      );
    }
  }
});

Deno.test("generation stops at <|im_end|>; sampling is reproducible per seed", async () => {
  const m = await tinyModel(6);
  const prompt = promptIds(40);
  const px = image(41);
  // force <|im_end|> by asking the greedy token to be a stop token
  const g = await m.generate({
    prompts: [prompt],
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
    maxNewTokens: 4,
    mode: "greedy",
  });
  const stopAt = g.tokens[0][0];
  const stopped = await m.generate({
    prompts: [prompt],
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
    maxNewTokens: 4,
    mode: "greedy",
    stopTokenIds: [stopAt],
  });
  assert.deepEqual([...stopped.tokens[0]], [stopAt]);
  assert.equal(stopped.stopped[0], true);
  assert.equal(m.config.text_config.eos_token_id, IDS.imEndTokenId);

  const req = {
    prompts: [prompt, prompt],
    pixelValues: tf.concat([px, px]) as tf.Tensor2D,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
  };
  const s1 = await m.generate({
    ...req,
    maxNewTokens: 8,
    mode: "sample",
    temperature: 1.5,
    topP: 0.95,
    seeds: [1, 2],
  });
  const s2 = await m.generate({
    ...req,
    maxNewTokens: 8,
    mode: "sample",
    temperature: 1.5,
    topP: 0.95,
    seeds: [1, 2],
  });
  assert.deepEqual(s1.tokens, s2.tokens);
  assert.notDeepEqual(
    [...s1.tokens[0]],
    [...s1.tokens[1]],
    "different seeds draw different tokens",
  );
  await assert.rejects(
    () => m.generate({ ...req, maxNewTokens: 2, mode: "sample", seeds: [1] }),
    /one seed per prompt/,
  );
});

Deno.test("cached decode steps reproduce the full forward's logits (left-padded batch)", async () => {
  const m = await tinyModel(5);
  const a = promptIds(51, 2, 3), b = promptIds(52, 4, 6);
  const L = b.length, pad = a.length;
  const extra = [Int32Array.from([60, 61, 62]), Int32Array.from([70, 71, 72])];
  const px = tf.concat([image(53), image(54)]) as tf.Tensor2D;
  const ids = new Int32Array(2 * L);
  ids.set(a, L - pad);
  ids.set(b, L);
  const mask = new Int32Array(2 * L).fill(1);
  mask.fill(0, 0, L - pad);
  const pre = m.forward({
    inputIds: tf.tensor2d(ids, [2, L], "int32"),
    attentionMask: tf.tensor2d(mask, [2, L], "int32"),
    pixelValues: px,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
    useCache: true,
  });
  const cache = pre.pastKeyValues!;
  for (let s = 0; s < 3; s++) {
    const step = m.forward({
      inputIds: tf.tensor2d([extra[0][s], extra[1][s]], [2, 1], "int32"),
      pastKeyValues: cache,
    });
    const got = step.logits.dataSync() as Float32Array;
    for (const [r, p] of [a, b].entries()) {
      const seq = Int32Array.from([...p, ...extra[r].subarray(0, s + 1)]);
      const full = m.forward({
        inputIds: tf.tensor2d(seq, [1, seq.length], "int32"),
        pixelValues: tf.slice(px, [r * 64, 0], [64, 384]),
        imageGridThw: [[1, 8, 8]],
      });
      const want = (full.logits.dataSync() as Float32Array).subarray(
        (seq.length - 1) * VOCAB,
      );
      const diff = want.reduce(
        (mx, v, i) => Math.max(mx, Math.abs(v - got[r * VOCAB + i])),
        0,
      );
      assert.ok(diff < 1e-4, `row ${r} step ${s}: max |diff| ${diff}`);
    }
  }
  assert.equal(cache.length, L + 3);
  cache.dispose();
});

Deno.test("forward, taped forward and generate leave no tensors behind", async () => {
  const m = await tinyModel(8);
  const px = image(61);
  const ids = tf.tensor2d(promptIds(62), [1, 27], "int32");
  // first calls build the cached fused weights; count after them
  m.forward({ inputIds: ids, pixelValues: px, imageGridThw: [[1, 8, 8]] })
    .logits.dispose();
  await m.generate({
    prompts: [promptIds(62)],
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
    maxNewTokens: 2,
    mode: "greedy",
  });
  const before = tf.memory().numTensors;
  m.forward({ inputIds: ids, pixelValues: px, imageGridThw: [[1, 8, 8]] })
    .logits.dispose();
  m.forward({
    inputsEmbeds: m.embedTokens(ids),
    pixelValues: px,
    imageGridThw: [[1, 8, 8]],
  }).logits.dispose();
  await m.generate({
    prompts: [promptIds(62), promptIds(63, 1, 2)],
    pixelValues: tf.concat([px, px]) as tf.Tensor2D,
    imageGridThw: [[1, 8, 8], [1, 8, 8]],
    maxNewTokens: 5,
    mode: "sample",
    seeds: [1, 2],
  });
  const { value, grads } = tf.variableGrads(() =>
    tf.sum(
      m.forward({ inputIds: ids, pixelValues: px, imageGridThw: [[1, 8, 8]] })
        .logits,
    ) as tf.Scalar
  );
  tf.dispose([value, ...Object.values(grads)]);
  // the embedTokens output and the concat above are the caller's: 2 tensors
  assert.equal(tf.memory().numTensors - before, 2);
});
