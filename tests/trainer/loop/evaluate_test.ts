import assert from "node:assert/strict";
import { join } from "node:path";
import { initRuntime } from "../../../trainer/runtime.ts";
import { writeSynthDataset } from "../../../trainer/data/synth.ts";
import { loadJsonl } from "../../../trainer/data/jsonl.ts";
import { SampleStore } from "../../../trainer/loop/samples.ts";
import { buildTokenizerFromRecords } from "../../../trainer/loop/setup.ts";
import { rolloutSummary } from "../../../trainer/loop/evaluate.ts";
import type { Qwen3VLForConditionalGeneration } from "../../../trainer/model/qwen3vl.ts";
import type { GenerateRequest } from "../../../trainer/model/generate.ts";

await initRuntime({ log: () => {} });

Deno.test("rollout summary: parse rate, P/R/F1 at IoU 0.5 and mean IoU from scripted rollouts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stage2-eval-" });
  try {
    await writeSynthDataset(dir, {
      nTrain: 0,
      nVal: 3,
      seed: 4,
      imageSize: 64,
      maxObjects: 3,
    });
    const records = await loadJsonl(join(dir, "val.jsonl"));
    const { tokenizer: tok } = buildTokenizerFromRecords(records);
    const store = new SampleStore(records, tok, {
      patchSize: 8,
      temporalPatchSize: 2,
      mergeSize: 2,
      minPixels: 1024,
      maxPixels: 65536,
    });
    const s0 = await store.get(0);
    const s1 = await store.get(1);
    const s2 = await store.get(2);
    // rollout 0: the GT answer itself (every box matched, IoU 1);
    // rollout 1: the GT answer with each box shifted right by 600 bins (IoU 0);
    // rollout 2: no JSON at all.
    const gtAnswer = (s: typeof s0) =>
      Array.from(s.inputIds.slice(s.promptLength));
    const shifted = gtAnswer(s1).map((id) => {
      const k = tok.coordBinOfId(id);
      return k === undefined ? id : tok.coordIds[Math.min(999, k + 600)];
    });
    const scripted = [gtAnswer(s0), shifted, tok.encode("no boxes here")];
    let call = 0;
    const fake = {
      config: { vision_config: { patch_size: 8 } },
      generate: (req: GenerateRequest) => {
        assert.equal(req.mode, "greedy");
        const out = req.prompts.map(() => Int32Array.from(scripted[call++]));
        return Promise.resolve({ tokens: out, stopped: out.map(() => true) });
      },
    } as unknown as Qwen3VLForConditionalGeneration;
    const s = await rolloutSummary(fake, tok, store, {
      maxSamples: null,
      maxNewTokens: 64,
      batchSize: 2,
      globalStep: 7,
    });
    const n0 = s0.objects.length,
      n1 = s1.objects.length,
      n2 = s2.objects.length;
    assert.equal(s.samples, 3);
    assert.ok(Math.abs(s.parse_rate - 2 / 3) < 1e-12);
    assert.ok(Math.abs(s.invalid_rate - 1 / 3) < 1e-12);
    assert.equal(s.predictions, n0 + n1);
    assert.equal(s.ground_truth, n0 + n1 + n2);
    assert.equal(s.true_positives, n0);
    assert.ok(Math.abs(s.precision - n0 / (n0 + n1)) < 1e-12);
    assert.ok(Math.abs(s.recall - n0 / (n0 + n1 + n2)) < 1e-12);
    const f1 = 2 * s.precision * s.recall / (s.precision + s.recall);
    assert.ok(Math.abs(s.f1 - f1) < 1e-12);
    assert.equal(s.mean_iou, 1);
    assert.equal(s.desc_accuracy, 1);
    assert.equal(s.global_step, 7);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
