/**
 * Evaluation rollouts: batched greedy generation with the KV cache over a
 * split, strict parsing, box scores from the coord tokens' log-probabilities
 * and the per-image matching at IoU 0.5. One `EvalSampleRecord` per image
 * is what every summary, overlay and report is computed from.
 */
import { tf } from "../runtime.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { parseRolloutForMatching } from "../rollout/parse.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { RawSample } from "../variant/contract.ts";
import { concatPixels } from "../variant/packing.ts";
import { matchImage } from "./metrics.ts";
import {
  BOX_SCORE_RULE,
  EVAL_IOU,
  type EvalSampleRecord,
  type RolloutRun,
} from "./record.ts";

export { BOX_SCORE_RULE, EVAL_IOU };
export type { EvalSampleRecord, RolloutRun };

/**
 * Where the evaluated samples come from: a split's first `size` samples by
 * position (the loop's `SampleStore` is one).
 */
export interface EvalSampleSource {
  readonly size: number;
  getMany(indices: number[]): Promise<RawSample[]>;
}

export interface RolloutRunOptions {
  maxSamples: number | null;
  maxNewTokens: number;
  batchSize: number;
  /** Called after each batch: images done, tokens generated, generation seconds. */
  onProgress?: (done: number, tokens: number, seconds: number) => void;
}

/** Mean of `logprobs` at the given response positions. */
export function boxScore(
  logprobs: ArrayLike<number>,
  positions: readonly number[],
): number {
  let s = 0;
  for (const p of positions) s += logprobs[p];
  return s / positions.length;
}

/** Greedy rollouts on the first `maxSamples` images of `store`. */
export async function runEvalRollouts(
  model: Qwen3VLForConditionalGeneration,
  tok: Tokenizer,
  store: EvalSampleSource,
  o: RolloutRunOptions,
): Promise<RolloutRun> {
  const n = Math.min(store.size, o.maxSamples ?? store.size);
  const records: EvalSampleRecord[] = [];
  let generatedTokens = 0, generateSeconds = 0;
  for (let i = 0; i < n; i += o.batchSize) {
    const idx = Array.from(
      { length: Math.min(o.batchSize, n - i) },
      (_, k) => i + k,
    );
    const samples = await store.getMany(idx);
    const t0 = performance.now();
    const res = await generateBatch(model, samples, o.maxNewTokens);
    generateSeconds += (performance.now() - t0) / 1000;
    samples.forEach((s, k) => {
      generatedTokens += res.tokens[k].length;
      records.push(
        recordOf(tok, s, res.tokens[k], res.logprobs[k], res.stopped[k]),
      );
    });
    o.onProgress?.(i + samples.length, generatedTokens, generateSeconds);
  }
  return { records, generatedTokens, generateSeconds };
}

async function generateBatch(
  model: Qwen3VLForConditionalGeneration,
  samples: RawSample[],
  maxNewTokens: number,
) {
  const px = concatPixels(samples); // [sum Npatch, D], in prompt order
  const pixelValues = tf.tensor2d(px.data, px.shape);
  try {
    return await model.generate({
      prompts: samples.map((s) => s.inputIds.slice(0, s.promptLength)),
      pixelValues,
      imageGridThw: samples.flatMap((s) => s.imageGridThw),
      maxNewTokens,
      mode: "greedy",
    });
  } finally {
    pixelValues.dispose();
  }
}

function recordOf(
  tok: Tokenizer,
  s: RawSample,
  tokens: Int32Array,
  logprobs: Float32Array,
  stopped: boolean,
): EvalSampleRecord {
  const p = parseRolloutForMatching(tok, tokens);
  const gts = s.objects.map((g) => ({ desc: g.desc, bbox_2d: g.bbox_2d }));
  // coord positions index the response, which is a prefix of `tokens`
  const preds = p.predictions.map((q) => ({
    desc: q.desc,
    bbox_2d: q.bbox,
    score: boxScore(logprobs, q.coordPositions),
  }));
  const matches = matchImage(
    {
      gts: gts.map((g) => ({ desc: g.desc, bbox: g.bbox_2d })),
      preds: preds.map((q) => ({ desc: q.desc, bbox: q.bbox_2d, score: 0 })),
    },
    EVAL_IOU,
  );
  return {
    index: s.index,
    source: s.record.source,
    image: s.record.images[0],
    width: s.record.width,
    height: s.record.height,
    parsed: !p.invalid && p.stop === "closed",
    invalid: p.invalid,
    stop: p.stop,
    truncated: !stopped,
    drops: p.drops,
    new_tokens: tokens.length,
    gts,
    preds,
    matches: matches.map((m) => ({ pred: m.pred, gt: m.gt, iou: m.iou })),
    text: tok.decode(p.responseIds),
  };
}
