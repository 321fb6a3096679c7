/**
 * Detection evaluation of a model on a split: batched greedy rollouts (KV
 * cache), strict parsing, matching at IoU 0.5, COCO-style AP over IoU
 * 0.50:0.95 with boxes scored by their coord tokens' mean log-probability,
 * a per-desc table, overlays, and the files `stage2 eval`, `train` and
 * `stage2 report` share: `eval_summary.json`, `eval_samples.jsonl`,
 * `overlays/<index>.png`. Loading a checkpoint to evaluate it is the loop's
 * business (`trainer/loop/eval_checkpoint.ts`).
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { DEFAULT_OVERLAYS, overlayOf } from "./overlay.ts";
import {
  type EvalSampleRecord,
  type EvalSampleSource,
  runEvalRollouts,
} from "./rollout.ts";
import {
  type EvalSummary,
  OVERLAYS_DIR,
  summarize,
  writeEvalFiles,
} from "./summary.ts";

export * from "./ap.ts";
export * from "./metrics.ts";
export * from "./rollout.ts";
export * from "./summary.ts";
export {
  DEFAULT_OVERLAYS,
  OVERLAY_COLOURS,
  overlayOf,
  renderOverlay,
} from "./overlay.ts";

/** Summary plus the per-image records it was computed from. */
export interface EvalResult {
  summary: EvalSummary;
  records: EvalSampleRecord[];
}

export interface RolloutEvaluationOptions {
  maxSamples: number | null;
  maxNewTokens: number;
  batchSize: number;
  globalStep: number;
  evalLoss?: number | null;
  checkpoint?: string | null;
  data?: string | null;
  /** Called after each batch: images done, tokens generated, generation seconds. */
  onProgress?: (done: number, tokens: number, seconds: number) => void;
}

/**
 * Greedy rollouts on a split and their summary.
 *
 * @example
 * const { summary } = await rolloutEvaluation(model, tok, store,
 *   { maxSamples: 32, maxNewTokens: 128, batchSize: 16, globalStep: 45 });
 * console.log(formatSummary(summary));
 */
export async function rolloutEvaluation(
  model: Qwen3VLForConditionalGeneration,
  tok: Tokenizer,
  store: EvalSampleSource,
  o: RolloutEvaluationOptions,
): Promise<EvalResult> {
  const run = await runEvalRollouts(model, tok, store, {
    maxSamples: o.maxSamples,
    maxNewTokens: o.maxNewTokens,
    batchSize: o.batchSize,
    onProgress: o.onProgress,
  });
  return {
    summary: summarize(run, {
      globalStep: o.globalStep,
      maxNewTokens: o.maxNewTokens,
      batchSize: o.batchSize,
      evalLoss: o.evalLoss,
      checkpoint: o.checkpoint,
      data: o.data,
    }),
    records: run.records,
  };
}

/**
 * Writes `eval_summary.json`, `eval_samples.jsonl` and the first
 * `overlays` images' PNG overlays into `dir`; returns the summary path.
 */
export async function writeEvalOutputs(
  dir: string,
  r: EvalResult,
  overlays = DEFAULT_OVERLAYS,
): Promise<string> {
  const path = await writeEvalFiles(dir, r.summary, r.records);
  for (const rec of r.records.slice(0, overlays)) {
    await writeFileAtomic(
      join(dir, OVERLAYS_DIR, `${String(rec.index).padStart(5, "0")}.png`),
      await overlayOf(rec),
    );
  }
  return path;
}
