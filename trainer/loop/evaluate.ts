/**
 * Evaluation: teacher-forced loss on validation samples, and the rollout
 * summary (greedy generation, strict parse, Hungarian match at IoU 0.5):
 * parse rate, precision / recall / F1 and mean IoU of matched boxes.
 */
import { join } from "node:path";
import { tf } from "../runtime.ts";
import type { Xyxy } from "../coord/pixels.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { boxIou, hungarianMatch } from "../rollout/match.ts";
import { parseRolloutForMatching } from "../rollout/parse.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { TraceRecorder } from "../trace/recorder.ts";
import type { SampleStore } from "./samples.ts";
import { buildSftBatch, disposeSftBatch, packingTrace } from "../sft/batch.ts";

export const EVAL_SUMMARY_FILE = "eval_summary.json";

/** IoU threshold of a true positive. */
export const EVAL_IOU = 0.5;

export interface EvalLossOptions {
  maxSamples: number | null;
  microBatchSize: number;
  packing: { enabled: boolean; max_length: number };
  padId: number;
  trace?: TraceRecorder;
  globalStep: number;
}

/**
 * Token-weighted CE over the answers of the first `maxSamples` validation
 * samples: `sum(nll) / sum(supervised)`, so the value does not depend on how
 * samples were grouped into batches.
 */
export async function evalLoss(
  model: Qwen3VLForConditionalGeneration,
  store: SampleStore,
  o: EvalLossOptions,
): Promise<number> {
  const n = Math.min(store.size, o.maxSamples ?? store.size);
  if (n === 0) return NaN;
  let nll = 0;
  let count = 0;
  for (let i = 0, mb = 0; i < n; mb++) {
    const idx: number[] = [];
    let len = 0;
    while (idx.length < o.microBatchSize && i < n) {
      const l = store.lengths[i];
      if (
        o.packing.enabled && idx.length > 0 && len + l > o.packing.max_length
      ) {
        break;
      }
      idx.push(i++);
      len += l;
    }
    const samples = await store.getMany(idx);
    const batch = buildSftBatch(samples, {
      modelConfig: model.config,
      packing: o.packing,
      padId: o.padId,
    });
    try {
      o.trace?.setContext({
        globalStep: o.globalStep,
        channel: "eval",
        purpose: "eval",
        microBatch: mb,
        pass: 0,
        nPasses: 1,
        gradRecorded: false,
        training: false,
        ...packingTrace(batch.collated),
      });
      const sum = tf.tidy(() => {
        const out = model.forward({
          inputIds: batch.inputIds,
          positionIds: batch.positionIds,
          ...(batch.pixelValues
            ? {
              pixelValues: batch.pixelValues,
              imageGridThw: batch.collated.imageGridThw,
            }
            : {}),
        });
        const [B, L, V] = out.logits.shape;
        const logp = tf.logSoftmax(out.logits.reshape([B * L, V]));
        return tf.neg(tf.sum(tf.mul(logp, batch.targets)));
      });
      nll += sum.dataSync()[0];
      sum.dispose();
      count += batch.supervised;
    } finally {
      o.trace?.setContext(null);
      disposeSftBatch(batch);
    }
  }
  return nll / Math.max(count, 1);
}

/** Per-image outcome of one validation rollout. */
export interface RolloutRecord {
  source: string;
  parsed: boolean;
  predictions: number;
  gts: number;
  tp: number;
  meanIou: number | null;
  text: string;
}

export interface EvalSummary {
  /** Completed optimizer updates of the evaluated weights. */
  global_step: number;
  samples: number;
  /** Rollouts that parsed as a complete, closed JSON object. */
  parse_rate: number;
  /** Rollouts with no top-level `{` at all. */
  invalid_rate: number;
  predictions: number;
  ground_truth: number;
  true_positives: number;
  precision: number;
  recall: number;
  f1: number;
  /** Mean IoU of the matched (IoU >= 0.5) pairs; null when none matched. */
  mean_iou: number | null;
  /** Matched pairs whose desc equals the GT desc. */
  desc_accuracy: number | null;
  /** Predicted objects dropped by the strict parser, by kind. */
  drops: { poly: number; unknown: number; bbox_invalid: number };
  iou_threshold: number;
  max_new_tokens: number;
  eval_loss: number | null;
  examples: RolloutRecord[];
}

export interface RolloutEvalOptions {
  maxSamples: number | null;
  maxNewTokens: number;
  batchSize: number;
  globalStep: number;
  evalLoss?: number | null;
  /** How many per-image examples to keep in the summary. */
  keepExamples?: number;
}

/** Greedy rollouts on validation images, strictly parsed and matched. */
export async function rolloutSummary(
  model: Qwen3VLForConditionalGeneration,
  tok: Tokenizer,
  store: SampleStore,
  o: RolloutEvalOptions,
): Promise<EvalSummary> {
  const n = Math.min(store.size, o.maxSamples ?? store.size);
  const drops = { poly: 0, unknown: 0, bbox_invalid: 0 };
  let parsedOk = 0, invalid = 0, nPred = 0, nGt = 0, tp = 0, descOk = 0;
  let iouSum = 0;
  const examples: RolloutRecord[] = [];
  for (let i = 0; i < n; i += o.batchSize) {
    const idx = Array.from(
      { length: Math.min(o.batchSize, n - i) },
      (_, k) => i + k,
    );
    const samples = await store.getMany(idx);
    const rows = samples.reduce((r, s) => r + s.pixelShape[0], 0);
    const px = new Float32Array(rows * samples[0].pixelShape[1]);
    let off = 0;
    for (const s of samples) {
      px.set(s.pixelValues, off);
      off += s.pixelValues.length;
    }
    const pixelValues = tf.tensor2d(px, [rows, samples[0].pixelShape[1]]);
    let res;
    try {
      res = await model.generate({
        prompts: samples.map((s) => s.inputIds.slice(0, s.promptLength)),
        pixelValues,
        imageGridThw: samples.flatMap((s) => s.imageGridThw),
        maxNewTokens: o.maxNewTokens,
        mode: "greedy",
      });
    } finally {
      pixelValues.dispose();
    }
    samples.forEach((s, k) => {
      const p = parseRolloutForMatching(tok, res.tokens[k]);
      const ok = !p.invalid && p.stop === "closed";
      if (ok) parsedOk++;
      if (p.invalid) invalid++;
      drops.poly += p.drops.poly;
      drops.unknown += p.drops.unknown;
      drops.bbox_invalid += p.drops.bbox_invalid;
      const preds: Xyxy[] = p.predictions.map((q) => q.bbox);
      const gts: Xyxy[] = s.objects.map((g) => g.bbox_2d);
      const m = hungarianMatch(preds, gts, {
        candidateTopK: Math.max(1, gts.length),
        iouGate: EVAL_IOU,
        fpCost: 1,
        fnCost: 1,
      });
      nPred += preds.length;
      nGt += gts.length;
      tp += m.pairs.length;
      let iouHere = 0;
      for (const pair of m.pairs) {
        const iou = boxIou(preds[pair.pred], gts[pair.gt]);
        iouSum += iou;
        iouHere += iou;
        if (p.predictions[pair.pred].desc === s.objects[pair.gt].desc) descOk++;
      }
      if (examples.length < (o.keepExamples ?? 8)) {
        examples.push({
          source: s.record.source,
          parsed: ok,
          predictions: preds.length,
          gts: gts.length,
          tp: m.pairs.length,
          meanIou: m.pairs.length ? iouHere / m.pairs.length : null,
          text: tok.decode(p.responseIds),
        });
      }
    });
  }
  const precision = nPred ? tp / nPred : 0;
  const recall = nGt ? tp / nGt : 0;
  return {
    global_step: o.globalStep,
    samples: n,
    parse_rate: n ? parsedOk / n : 0,
    invalid_rate: n ? invalid / n : 0,
    predictions: nPred,
    ground_truth: nGt,
    true_positives: tp,
    precision,
    recall,
    f1: precision + recall > 0
      ? 2 * precision * recall / (precision + recall)
      : 0,
    mean_iou: tp ? iouSum / tp : null,
    desc_accuracy: tp ? descOk / tp : null,
    drops,
    iou_threshold: EVAL_IOU,
    max_new_tokens: o.maxNewTokens,
    eval_loss: o.evalLoss ?? null,
    examples,
  };
}

/** One-paragraph human summary. */
export function formatSummary(s: EvalSummary, label = "eval"): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return `${label} @ step ${s.global_step} on ${s.samples} val images: parse ${
    pct(s.parse_rate)
  }, precision ${pct(s.precision)}, recall ${
    pct(s.recall)
  }, F1@${s.iou_threshold} ${pct(s.f1)}, mean IoU ${
    s.mean_iou === null ? "n/a" : s.mean_iou.toFixed(3)
  } (${s.true_positives}/${s.ground_truth} GT matched, ${s.predictions} predicted)${
    s.eval_loss === null ? "" : `, eval loss ${s.eval_loss.toFixed(4)}`
  }`;
}

export async function writeEvalSummary(
  runDir: string,
  s: EvalSummary,
): Promise<string> {
  const path = join(runDir, EVAL_SUMMARY_FILE);
  await writeFileAtomic(path, JSON.stringify(s, null, 2) + "\n");
  return path;
}
