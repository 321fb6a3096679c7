/**
 * `stage2 eval`: detection evaluation of a checkpoint folder on a JSONL
 * split. Loads what a run saved (model, tokenizer, resize bounds) the way
 * training and `infer` do, then runs `trainer/eval` on it and writes its
 * outputs.
 */
import { loadJsonl } from "../data/jsonl.ts";
import { type EvalResult, writeEvalOutputs } from "../eval/mod.ts";
import { visionPreprocessFor } from "../model/config.ts";
import { readTrainerState } from "./checkpoint.ts";
import { rolloutEvalWithProgress } from "./evaluate.ts";
import { checkMaxNewTokens } from "./guards.ts";
import { loadForInference, readBounds } from "./infer.ts";
import { SampleStore } from "./samples.ts";

export interface CheckpointEvalOptions {
  /** A `checkpoint-<step>` folder (config.json, model.safetensors, tokenizer.json). */
  checkpoint: string;
  /** Detection JSONL (validated like training data). */
  data: string;
  /** Where the outputs go. */
  out: string;
  maxSamples: number | null;
  maxNewTokens: number;
  batchSize: number;
  overlays?: number;
  progressTty?: boolean;
  log?: (line: string) => void;
}

/**
 * Loads a checkpoint and a JSONL split, checks that every image of the
 * evaluated records decodes (a bad record fails before any rollout, naming
 * `file:line`), evaluates and writes the outputs into `out`.
 *
 * @example
 * const r = await evaluateCheckpoint({ checkpoint: "runs/q/checkpoint-45",
 *   data: "runs/q/data/val.jsonl", out: "runs/q/eval", maxSamples: null,
 *   maxNewTokens: 256, batchSize: 16 });
 * console.log(formatSummary(r.summary));
 */
export async function evaluateCheckpoint(
  o: CheckpointEvalOptions,
): Promise<EvalResult & { summaryPath: string }> {
  const records = await loadJsonl(o.data);
  const { model, tok } = await loadForInference(o.checkpoint);
  try {
    checkMaxNewTokens(o.maxNewTokens, model, "--max-new-tokens");
    const bounds = await readBounds(o.checkpoint);
    const store = new SampleStore(records, tok, {
      ...visionPreprocessFor(model.config),
      minPixels: bounds.min_pixels,
      maxPixels: bounds.max_pixels,
    });
    const n = Math.min(store.size, o.maxSamples ?? store.size);
    for (let i = 0; i < n; i++) await store.get(i); // decode check
    const step = await checkpointStep(o.checkpoint);
    o.log?.(
      `evaluating ${o.checkpoint} (step ${
        step ?? "?"
      }) on ${n} of ${records.length} records of ${o.data}`,
    );
    const r = await rolloutEvalWithProgress(model, tok, store, {
      maxSamples: o.maxSamples,
      maxNewTokens: o.maxNewTokens,
      batchSize: o.batchSize,
      globalStep: step ?? 0,
      checkpoint: o.checkpoint,
      data: o.data,
      progressTty: o.progressTty,
    });
    const summaryPath = await writeEvalOutputs(o.out, r, o.overlays);
    return { ...r, summaryPath };
  } finally {
    model.dispose();
  }
}

/** `global_step` of the checkpoint's trainer state; null without one. */
function checkpointStep(dir: string): Promise<number | null> {
  return readTrainerState(dir).then((s) => s.global_step, () => null);
}
