import assert from "node:assert/strict";
import { join } from "node:path";
import { initRuntime } from "../../../trainer/runtime.ts";
import { writeSynthDataset } from "../../../trainer/data/synth.ts";
import { loadJsonl } from "../../../trainer/data/jsonl.ts";
import { readPng } from "../../../trainer/data/png.ts";
import { SampleStore } from "../../../trainer/loop/samples.ts";
import { buildTokenizerFromRecords } from "../../../trainer/loop/setup.ts";
import {
  EVAL_SAMPLES_FILE,
  EVAL_SUMMARY_FILE,
  type EvalSampleRecord,
  formatSummary,
  OVERLAYS_DIR,
  rolloutEvaluation,
  writeEvalOutputs,
} from "../../../trainer/eval/mod.ts";
import type { Qwen3VLForConditionalGeneration } from "../../../trainer/model/qwen3vl.ts";
import type { GenerateRequest } from "../../../trainer/model/generate.ts";

await initRuntime({ log: () => {} });

Deno.test("rollout evaluation: scripted rollouts give the hand-counted parse rate, P/R/F1, box scores and files", async () => {
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
    const [s0, s1, s2] = await store.getMany([0, 1, 2]);
    // rollout 0: the GT answer itself (every box matched, IoU 1);
    // rollout 1: the GT answer with each box shifted right by 600 bins;
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
        const tokens = req.prompts.map(() => Int32Array.from(scripted[call++]));
        return Promise.resolve({
          tokens,
          stopped: tokens.map(() => true),
          // log-prob of token t is -t/100: box scores are checkable by hand
          logprobs: tokens.map((t) => Float32Array.from(t, (_, i) => -i / 100)),
        });
      },
    } as unknown as Qwen3VLForConditionalGeneration;
    const progress: number[][] = [];
    const r = await rolloutEvaluation(fake, tok, store, {
      maxSamples: null,
      maxNewTokens: 64,
      batchSize: 2,
      globalStep: 7,
      onProgress: (done, tokens) => progress.push([done, tokens]),
    });
    // one report per batch of 2: images done and tokens generated so far
    const len = scripted.map((t) => t.length);
    assert.deepEqual(progress, [[2, len[0] + len[1]], [
      3,
      len[0] + len[1] + len[2],
    ]]);
    const s = r.summary;
    const n0 = s0.objects.length, n1 = s1.objects.length;
    const n2 = s2.objects.length;
    assert.equal(s.samples, 3);
    assert.ok(Math.abs(s.parse_rate - 2 / 3) < 1e-12);
    assert.ok(Math.abs(s.invalid_rate - 1 / 3) < 1e-12);
    assert.equal(s.predictions, n0 + n1);
    assert.equal(s.ground_truth, n0 + n1 + n2);
    assert.equal(s.true_positives, n0);
    assert.ok(Math.abs(s.precision! - n0 / (n0 + n1)) < 1e-12);
    assert.ok(Math.abs(s.recall! - n0 / (n0 + n1 + n2)) < 1e-12);
    assert.ok(
      Math.abs(s.f1! - (2 * n0) / (n0 + n1 + n0 + n1 + n2)) < 1e-12,
    );
    assert.equal(s.mean_iou, 1);
    assert.equal(s.global_step, 7);
    assert.ok(s.ap !== null && s.ap > 0 && s.ap <= 1);
    assert.match(
      s.box_score,
      /mean log-probability of the box's 4 coord tokens/,
    );
    assert.equal(
      s.rollout.generated_tokens,
      scripted.reduce((n, t) => n + t.length, 0),
    );
    // box score = mean log-prob at the box's 4 coord-token positions
    const coordPos = scripted[0].flatMap((id, i) =>
      tok.coordBinOfId(id) === undefined ? [] : [i]
    );
    r.records[0].preds.forEach((p, j) => {
      const pos = coordPos.slice(4 * j, 4 * j + 4);
      const want = -pos.reduce((a, b) => a + b, 0) / 4 / 100;
      assert.ok(
        Math.abs(p.score - want) < 1e-6,
        `box ${j}: ${p.score} vs ${want}`,
      );
    });
    assert.deepEqual(r.records.map((x) => x.matches.length), [n0, 0, 0]);
    assert.match(
      formatSummary(s, "t"),
      /^t @ step 7 on 3 images: parse 66\.7% \(33\.3% invalid\), P\/R\/F1@0\.5 .*AP .*mean IoU 1\.000/,
    );

    const out = join(dir, "out");
    await writeEvalOutputs(out, r, 2);
    const back = JSON.parse(
      await Deno.readTextFile(join(out, EVAL_SUMMARY_FILE)),
    );
    assert.deepEqual(back, JSON.parse(JSON.stringify(s)));
    const lines = (await Deno.readTextFile(join(out, EVAL_SAMPLES_FILE)))
      .trim().split("\n").map((l) => JSON.parse(l) as EvalSampleRecord);
    assert.deepEqual(lines.map((l) => l.index), [0, 1, 2]);
    const pngs = [...Deno.readDirSync(join(out, OVERLAYS_DIR))].map((e) =>
      e.name
    )
      .sort();
    assert.deepEqual(pngs, ["00000.png", "00001.png"]);
    const img = await readPng(join(out, OVERLAYS_DIR, "00000.png"));
    assert.equal(img.width, 384);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
