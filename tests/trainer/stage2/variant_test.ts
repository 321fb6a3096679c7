import { slotVerdict } from "../../../audit/trace/observed_checks.ts";
import assert from "node:assert/strict";
import { initRuntime, tf } from "../../../trainer/runtime.ts";
import { createStage2AbVariant } from "../../../trainer/stage2/variant.ts";
import {
  rawSample,
  SAMPLE_OBJECTS,
  tinyTokenizer,
} from "../rollout/helpers.ts";
import { harness, microModel, runStep, stage2Config } from "./harness.ts";

await initRuntime({ log: () => {} });
const tok = tinyTokenizer();
const samples = () => [
  rawSample(SAMPLE_OBJECTS.slice(0, 2), 0),
  rawSample(SAMPLE_OBJECTS.slice(2), 1),
];

/** The Stage-2 variant under test, on the shared tiny tokenizer, seed 3. */
const variantFor = (
  model: Parameters<typeof createStage2AbVariant>[0]["model"],
  config: Parameters<typeof createStage2AbVariant>[0]["config"],
) => createStage2AbVariant({ model, tokenizer: tok, config, trainingSeed: 3 });

Deno.test("Channel A: n passes, only the last records gradients, 4-row ids, trace invariants hold [1.7.2, 1.7.7, 1.7.8, 1.7.9]", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: { extra: { stage2_ab: { n_softctx_iter: 3 } } },
  });
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const r = await runStep(h, variant, samples(), 0);
  assert.ok(Number.isFinite(r.loss));
  const fw = h.forwards().filter((f) => f.purpose === "train");
  assert.deepEqual(fw.map((f) => [f.pass, f.nPasses, f.gradRecorded]), [
    [0, 3, false],
    [1, 3, false],
    [2, 3, true],
  ]);
  for (const f of fw) {
    assert.equal(f.inputKind, "inputs_embeds");
    assert.equal(f.useCache, false);
    assert.equal(f.returnedPast, false);
    assert.equal(f.cacheIn, false);
    assert.equal(f.logitsLen, f.seqLen);
    assert.equal(f.positionIdsRows, 4);
    assert.equal(f.placeholderBitwiseEqual, true);
    assert.equal(f.packed, true);
    assert.deepEqual(f.attentionSegments![0].length, 2, "two packed samples");
    assert.deepEqual(
      Object.values(f.checks).filter((v) => typeof v === "string"),
      [],
      `pass ${f.pass} has trace problems`,
    );
    assert.deepEqual(f.argKeys.sort(), [
      "imageGridThw",
      "inputsEmbeds",
      "pixelValues",
      "positionIds",
      "useCache",
    ]);
    // what the recorder observed on the fed rows
    const o = f.observed!;
    assert.deepEqual(o.foreignRows, [[]], "only coord-slot rows change");
    assert.equal(o.slots[0].length, 12);
    assert.ok(o.slots[0].every((x) => tok.coordBinOfId(x.id) !== undefined));
    if (f.pass > 0) {
      assert.deepEqual(
        o.slots[0].map(slotVerdict),
        Array(12).fill("soft"),
        "soft rows from the previous pass's logits at p-1",
      );
    }
    assert.equal(o.embedsOnTape, f.gradRecorded ? true : null);
  }
  assert.deepEqual(h.metrics.get("set:stage2/channel_a"), [1]);
  for (const k of ["loss/ce", "loss/bbox_l1", "loss/bbox_giou"]) {
    assert.ok(Number.isFinite(r.metrics[k]), k);
  }
});

Deno.test("A-only with n_softctx_iter 1 equals a plain teacher-forced step (1e-6)", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: { extra: { stage2_ab: { n_softctx_iter: 1 } } },
  });
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const plan = variant.planStep(0, 1);
  const prepared = await variant.prepare(h.ctx, samples(), plan);
  const vars = model.trainableVariables();
  const viaVariant = tf.variableGrads(
    () => variant.loss(h.ctx, prepared).loss,
    vars,
  );
  // The plain step: one forward on input_ids, same loss function.
  const { stage2Loss } = await import("../../../trainer/stage2/loss.ts");
  const plain = tf.variableGrads(() => {
    const out = model.forward({
      inputIds: prepared.inputIds,
      positionIds: prepared.positionIds,
      pixelValues: prepared.pixelValues!,
      imageGridThw: prepared.batch.imageGridThw,
    });
    return stage2Loss(out.logits, prepared.batch, {
      coordTokenIds: tok.coordIds,
      bboxL1Weight: config.custom.extra.stage2_ab.bbox_l1_weight,
      bboxGiouWeight: config.custom.extra.stage2_ab.bbox_giou_weight,
    }).total;
  }, vars);
  const a = viaVariant.value.dataSync()[0], b = plain.value.dataSync()[0];
  assert.ok(Math.abs(a - b) <= 1e-6, `${a} vs ${b}`);
  let maxDiff = 0;
  for (const v of vars) {
    const ga = viaVariant.grads[v.name], gb = plain.grads[v.name];
    if (!ga || !gb) continue;
    maxDiff = Math.max(maxDiff, tf.max(tf.abs(tf.sub(ga, gb))).dataSync()[0]);
  }
  assert.ok(maxDiff <= 1e-6, `grad diff ${maxDiff}`);
  variant.dispose?.(prepared);
});

Deno.test("Channel B greedy: seeded rollouts, counters, FN append trains", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: { extra: { stage2_ab: { schedule: { pattern: ["B"] } } } },
  });
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const plan = variant.planStep(2, 1);
  assert.equal(plan.channel, "B");
  assert.equal(plan.freshRollouts, true);
  assert.equal(plan.rolloutSeedBase, (3 + 2 * 1000003) & 0x7FFFFFFF);
  const r = await runStep(h, variant, samples(), 2);
  assert.ok(Number.isFinite(r.loss));
  assert.deepEqual(h.metrics.get("fact:rollout:rollout/seed_base"), [
    plan.rolloutSeedBase,
  ]);
  assert.deepEqual(h.metrics.get("set:stage2/channel_b"), [1]);
  const invalid = h.metrics.get("sum:stage2/invalid_rollout")[0];
  const fn = h.metrics.get("sum:match/fn")[0],
    matched = h.metrics.get("sum:match/matched")[0];
  assert.equal(fn + matched, 3, "every GT object is matched or appended");
  // the seeded random micro model writes one of its two rollouts without a
  // top-level "{" (trained as zero predictions from the prefix "{")
  assert.equal(invalid, 1);
  const fw = h.forwards();
  const train = fw.filter((f) => f.purpose === "train");
  assert.equal(train.length, 1);
  assert.equal(train[0].gradRecorded, true);
  assert.deepEqual(train[0].observed!.foreignRows, [[]]);
  assert.equal(train[0].observed!.embedsOnTape, true);
  assert.ok(fw.some((f) => f.purpose === "rollout" && f.useCache));
  assert.deepEqual(
    Object.values(train[0].checks).filter((v) => typeof v === "string"),
    [],
  );
});

Deno.test("determinism: same seed and data give bitwise-identical weights and metrics", async () => {
  const run = async () => {
    const model = microModel(tok, 11);
    const config = await stage2Config({
      custom: { extra: { stage2_ab: { schedule: { pattern: ["A", "B"] } } } },
      training: { trace: "off" },
    });
    const h = harness(model, config);
    const variant = variantFor(model, config);
    const out = [];
    for (let s = 0; s < 2; s++) {
      out.push(await runStep(h, variant, samples(), s));
    }
    const weights = model.trainableVariables().map((v) =>
      Array.from(new Uint32Array(v.dataSync().slice().buffer))
    );
    return { out, weights, metrics: [...h.metrics.values.entries()] };
  };
  const a = await run(), b = await run();
  assert.deepEqual(a.out, b.out);
  assert.deepEqual(a.metrics, b.metrics);
  assert.deepEqual(a.weights, b.weights);
});

Deno.test("guardrails: sliced logits, returned or carried cache, helper keys [1.7.8, 1.7.10]", async () => {
  const model = microModel(tok);
  const config = await stage2Config();
  const { trainingForward } = await import(
    "../../../trainer/stage2/forward.ts"
  );
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const plan = variant.planStep(0, 1);
  const prepared = await variant.prepare(h.ctx, samples(), plan);
  const embeds = model.embedTokens(prepared.inputIds);
  const args = {
    inputsEmbeds: embeds,
    positionIds: prepared.positionIds,
    pixelValues: prepared.pixelValues!,
    imageGridThw: prepared.batch.imageGridThw,
    useCache: false as const,
  };
  // A model that slices logits (as logitsToKeep would).
  const slicing = {
    forward: (a: typeof args) => {
      const out = model.forward(a);
      return {
        logits: out.logits.slice([0, 1, 0]) as tf.Tensor3D,
        pastKeyValues: null,
      };
    },
  };
  assert.throws(() => trainingForward(slicing, args), /sliced logits/);
  // A forward that hands back a cache.
  const caching = {
    forward: (a: typeof args) => ({
      logits: model.forward(a).logits,
      pastKeyValues: {},
    }),
  };
  assert.throws(() => trainingForward(caching, args), /past key\/values/);
  // Helper fields must never reach the model.
  assert.throws(
    () =>
      trainingForward(
        model,
        { ...args, labels: [1] } as unknown as typeof args,
      ),
    /helper key\(s\) labels/,
  );
  // A cache object carried into a training pass is refused before the model runs.
  assert.throws(
    () =>
      trainingForward(
        model,
        { ...args, pastKeyValues: {} } as unknown as typeof args,
      ),
    /generation-only key\(s\) pastKeyValues/,
  );
  assert.throws(
    () =>
      trainingForward(
        model,
        { ...args, useCache: true } as unknown as typeof args,
      ),
    /useCache: false/,
  );
  // And the real model refuses unknown keys on its own as well.
  assert.throws(
    () => model.forward({ ...args, channel: "A" } as unknown as typeof args),
    /unknown argument/,
  );
  // The variant's loss uses the same checked forward: a slicing model fails there too.
  const sliced = Object.create(model);
  sliced.forward = slicing.forward;
  assert.throws(
    () => variant.loss({ ...h.ctx, model: sliced }, prepared),
    /sliced logits/,
  );
  variant.dispose?.(prepared);
});

Deno.test("guardrails at start-up and on data: packing metadata, decode params, GT geometry", async () => {
  const model = microModel(tok);
  const config = await stage2Config();
  const noRope = Object.create(model);
  noRope.getRopeIndex = undefined;
  assert.throws(
    () => variantFor(noRope, config),
    /packing is on .*4-row position ids.*training\.packing\.enabled: false/,
  );
  const unpacked = await stage2Config({
    training: { packing: { enabled: false } },
  });
  variantFor(noRope, unpacked);
  // The config loader rejects this too; configs built in code are re-checked.
  const sampling = await stage2Config({
    custom: { extra: { rollout_matching: { decode_mode: "sample" } } },
  });
  sampling.custom.extra.rollout_matching.temperature = 0;
  assert.throws(
    () => variantFor(model, sampling),
    /temperature must be > 0 with decode_mode: sample/,
  );
  const sft = await stage2Config({ custom: { trainer_variant: "sft" } });
  assert.throws(
    () => variantFor(model, sft),
    /stage2_ab_training/,
  );
  // A polygon in the ground truth stops the step with an actionable message.
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const bad = rawSample(SAMPLE_OBJECTS.slice(0, 1), 4);
  (bad.objects as unknown[]).push({ desc: "blob", poly: [1, 2, 3, 4, 5, 6] });
  await assert.rejects(
    () => variant.prepare(h.ctx, [bad], variant.planStep(0, 1)),
    /train\.jsonl:5: object 1 \("blob"\) has geometry\/key "poly".*filter polygons/,
  );
});

Deno.test("a 3-row position id under packing is caught by the trace checks [1.7.7]", async () => {
  const model = microModel(tok);
  const config = await stage2Config();
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const prepared = await variant.prepare(
    h.ctx,
    samples(),
    variant.planStep(0, 1),
  );
  const L = prepared.batch.length;
  h.recorder.setContext({
    globalStep: 0,
    channel: "A",
    purpose: "train",
    microBatch: 0,
    pass: 0,
    nPasses: 1,
    gradRecorded: false,
    training: true,
    packed: true,
    segmentLengths: prepared.batch.segmentLengths,
  });
  // Correct: the 4-row ids the variant built.
  model.forward({
    inputsEmbeds: model.embedTokens(prepared.inputIds),
    positionIds: prepared.positionIds,
    pixelValues: prepared.pixelValues!,
    imageGridThw: prepared.batch.imageGridThw,
  });
  // Broken: drop row 0 (3-row mRoPE only) on a packed row.
  const three = prepared.positionIds.slice([1, 0, 0], [3, 1, L]) as tf.Tensor3D;
  model.forward({
    inputsEmbeds: model.embedTokens(prepared.inputIds),
    positionIds: three,
    pixelValues: prepared.pixelValues!,
    imageGridThw: prepared.batch.imageGridThw,
  });
  h.recorder.setContext(null);
  const [good, broken] = h.forwards().slice(-2);
  assert.equal(good.checks.row0, null);
  assert.equal(good.checks.attention, null);
  assert.ok(
    broken.checks.row0 !== null || broken.checks.attention !== null,
    JSON.stringify(broken.checks),
  );
  variant.dispose?.(prepared);
});

Deno.test("rollout buffer: reuse steps replay the buffered window as Channel B", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: {
      extra: {
        stage2_ab: { schedule: { pattern: ["B", "A"] } },
        rollout_matching: { rollout_buffer: { enabled: true, m_steps: 2 } },
      },
    },
  });
  const h = harness(model, config);
  const variant = variantFor(model, config);
  await runStep(h, variant, samples(), 0);
  const rolloutLines = () =>
    h.forwards().filter((f) => f.purpose === "rollout").length;
  const after0 = rolloutLines();
  assert.ok(after0 > 0);
  const plan1 = variant.planStep(1, 1);
  assert.deepEqual([
    plan1.channel,
    plan1.bufferReuse,
    plan1.freshRollouts,
    plan1.rolloutSeedBase,
  ], ["B", true, false, null]);
  // Different raw samples are ignored on a reuse step: the buffered ones train.
  await runStep(h, variant, [rawSample(SAMPLE_OBJECTS.slice(0, 1), 9)], 1);
  assert.equal(rolloutLines(), after0, "no new rollouts on a reuse step");
  assert.deepEqual(h.metrics.get("sum:match/fn").length, 2);
  // Resume inside the window: a fresh variant restored from the checkpoint
  // state replays the rollouts saved under <run>/rollout_buffer/.
  const reference = await variant.prepare(h.ctx, samples(), plan1);
  const state = variant.state!();
  assert.deepEqual(state, { bufferSourceStep: 0 });
  const resumed = variantFor(model, config);
  resumed.restore!(state);
  const rplan = resumed.planStep(1, 1);
  assert.deepEqual([rplan.channel, rplan.bufferReuse, rplan.freshRollouts], [
    "B",
    true,
    false,
  ]);
  const replay = await resumed.prepare(h.ctx, [
    rawSample(SAMPLE_OBJECTS.slice(0, 1), 7),
  ], rplan);
  assert.deepEqual(replay.batch.inputIds, reference.batch.inputIds);
  assert.deepEqual(replay.batch.boxes, reference.batch.boxes);
  assert.deepEqual(replay.batch.pixelValues, reference.batch.pixelValues);
  variant.dispose?.(reference);
  resumed.dispose?.(replay);
  // Without a buffer to resume from, the step rolls out fresh instead.
  const bare = variantFor(model, config);
  bare.restore!(null);
  const fresh = bare.planStep(1, 1);
  assert.deepEqual([fresh.channel, fresh.bufferReuse, fresh.freshRollouts], [
    "A",
    false,
    false,
  ]);
  // A checkpoint naming a buffer file that is gone fails with a clear message.
  const lost = variantFor(model, config);
  lost.restore!({ bufferSourceStep: 0 });
  await Deno.remove(`${h.runDir}/rollout_buffer`, { recursive: true });
  await assert.rejects(
    () => lost.prepare(h.ctx, samples(), lost.planStep(1, 1)),
    /cannot resume inside a rollout-buffer window: .*step-0\.json/,
  );
  assert.equal(variant.planStep(2, 1).channel, "B");
  assert.equal(variant.planStep(3, 1).bufferReuse, false);
});

Deno.test("invalid rollouts fall back to '{' and are counted; all GT appended [1.7.4]", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: { extra: { stage2_ab: { schedule: { pattern: ["B"] } } } },
  });
  const h = harness(model, config);
  // A model whose rollouts never open the JSON object.
  const chatty = Object.create(model);
  chatty.generate = (req: { prompts: Int32Array[] }) =>
    Promise.resolve({
      tokens: req.prompts.map(() =>
        Int32Array.from([...tok.encode("red circle"), tok.specialIds.imEnd])
      ),
      stopped: req.prompts.map(() => true),
    });
  h.ctx.model = chatty;
  const variant = variantFor(chatty, config);
  const plan = variant.planStep(0, 1);
  const prepared = await variant.prepare(h.ctx, samples(), plan);
  assert.deepEqual(h.metrics.get("sum:stage2/invalid_rollout"), [1, 1]);
  assert.deepEqual(h.metrics.get("sum:match/fn"), [3]);
  assert.deepEqual(h.metrics.get("sum:match/matched"), [0]);
  // Each sample trains on prompt + "{" + every GT object + <|im_end|>.
  assert.deepEqual(prepared.batch.boxes.map((b) => b.kind), ["fn", "fn", "fn"]);
  const L = prepared.batch.length;
  const text = tok.decode(Array.from(prepared.batch.inputIds.subarray(0, L)));
  const answers = text.split("<|im_start|>assistant\n").slice(1);
  assert.equal(answers.length, 2);
  for (const part of answers) {
    assert.ok(part.startsWith('{"object_1": {"desc": '), part.slice(0, 30));
  }
  // Deterministic: the same rollouts give the same batch.
  const again = await variant.prepare(h.ctx, samples(), plan);
  assert.deepEqual(again.batch.inputIds, prepared.batch.inputIds);
  variant.dispose?.(prepared);
  variant.dispose?.(again);
});

Deno.test("sampled rollouts are reproducible for the same seed base, batch and backend", async () => {
  const model = microModel(tok);
  const config = await stage2Config({
    custom: {
      extra: {
        stage2_ab: { schedule: { pattern: ["B"] } },
        rollout_matching: {
          decode_mode: "sample",
          temperature: 1.5,
          top_p: 0.95,
          max_new_tokens: 24,
        },
      },
    },
  });
  const h = harness(model, config);
  const variant = variantFor(model, config);
  const ids = async (step: number) => {
    h.ctx.globalStep = step;
    const p = await variant.prepare(
      h.ctx,
      samples(),
      variant.planStep(step, 1),
    );
    const out = p.rollouts!.map((r) => r.rollout.responseIds);
    variant.dispose?.(p);
    return out;
  };
  const a = await ids(4);
  assert.equal(a.length, 2);
  assert.deepEqual(await ids(4), a, "same step seed -> same samples");
  // Another step has another seed base; at temperature 1.5 the draws differ.
  assert.notDeepEqual(await ids(5), a);
});
