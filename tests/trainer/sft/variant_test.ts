import assert from "node:assert/strict";
import { createSftVariant } from "../../../trainer/sft/variant.ts";
import { harness, microModel, stage2Config } from "../stage2/harness.ts";
import {
  rawSample,
  SAMPLE_OBJECTS,
  tinyTokenizer,
} from "../rollout/helpers.ts";
import type { TrainContext } from "../../../trainer/variant/contract.ts";
import type { ForwardModel } from "../../../trainer/sft/batch.ts";
import { initRuntime, tf } from "../../../trainer/runtime.ts";

await initRuntime({ log: () => {} });
const tok = tinyTokenizer();
const sftConfig = (packing: boolean) =>
  stage2Config({
    training: { packing: { enabled: packing, max_length: 1024 } },
    custom: { trainer_variant: "sft" },
  });

Deno.test("sft: the start-up packing probe fails with a fix when the model cannot give 4-row ids", async () => {
  const model = microModel(tok);
  const noRope = Object.create(model);
  noRope.getRopeIndex = undefined;
  const config = await sftConfig(true);
  assert.throws(
    () => createSftVariant({ model: noRope, tokenizer: tok, config }),
    /packing is on .*4-row position ids.*training\.packing\.enabled: false/,
  );
  // unpacked rows need no row 0: the same model is fine
  createSftVariant({
    model: noRope,
    tokenizer: tok,
    config: await sftConfig(false),
  });
});

Deno.test("sft: one packed teacher-forced forward, CE over the answer tokens only", async () => {
  const model = microModel(tok);
  const config = await sftConfig(true);
  const variant = createSftVariant({ model, tokenizer: tok, config });
  assert.deepEqual(variant.planStep(7, 2), {
    channel: "sft",
    nPasses: 1,
    pattern: null,
    rolloutSeedBase: null,
    freshRollouts: false,
    bufferReuse: false,
  });
  const h = harness(model, config, tok);
  const ctx = h.ctx as unknown as TrainContext<ForwardModel>;
  const samples = [
    rawSample(SAMPLE_OBJECTS.slice(0, 1), 1),
    rawSample(SAMPLE_OBJECTS.slice(0, 2), 2),
  ];
  const batch = await variant.prepare(ctx, samples, variant.planStep(0, 1));
  assert.equal(batch.collated.packed, true);
  assert.equal(batch.positionIds.shape[0], 4);
  // every non-prompt token after position 0 of each sample is supervised
  const want = samples.reduce(
    (n, s) => n + (s.inputIds.length - s.promptLength),
    0,
  );
  assert.equal(batch.supervised, want);
  const r = tf.tidy(() => {
    const out = variant.loss(ctx, batch);
    return out.loss.dataSync()[0];
  });
  assert.ok(Number.isFinite(r) && r > 0, `loss ${r}`);
  assert.deepEqual(h.metrics.get("sum:train/supervised_tokens"), [want]);
  variant.dispose?.(batch);
  await Deno.remove(h.runDir, { recursive: true });
});
