/**
 * Evaluation in the training loop: teacher-forced loss on validation
 * samples, and the rollout metrics (greedy rollouts, strict parse, P/R/F1 at
 * IoU 0.5, COCO AP, mean IoU; computed by `trainer/eval`).
 */
import { tf } from "../runtime.ts";
import {
  type EvalResult,
  rolloutEvaluation,
  type RolloutEvaluationOptions,
} from "../eval/mod.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { TraceRecorder } from "../trace/recorder.ts";
import { Progress } from "./progress.ts";
import type { SampleStore } from "./samples.ts";
import {
  buildSftBatch,
  disposeSftBatch,
  packingTrace,
  positionNll,
} from "../sft/batch.ts";

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
      const sum = tf.tidy(() => tf.sum(positionNll(model, batch)));
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

/**
 * Validation rollouts and their detection metrics (`trainer/eval`), with a
 * progress line and ETA on stderr like training's.
 */
export async function rolloutEvalWithProgress(
  model: Qwen3VLForConditionalGeneration,
  tok: Tokenizer,
  store: SampleStore,
  o: Omit<RolloutEvaluationOptions, "onProgress"> & { progressTty?: boolean },
): Promise<EvalResult> {
  const progress = new Progress({
    total: Math.min(store.size, o.maxSamples ?? store.size),
    start: 0,
    tty: o.progressTty,
    label: "eval image",
  });
  try {
    return await rolloutEvaluation(model, tok, store, {
      ...o,
      onProgress: (done, tokens, seconds) =>
        progress.update(
          done,
          `rollouts, ${(tokens / Math.max(seconds, 1e-9)).toFixed(0)} tok/s`,
          true,
        ),
    });
  } finally {
    progress.done();
  }
}
