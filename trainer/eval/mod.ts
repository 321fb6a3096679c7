/**
 * Detection evaluation of a checkpoint on a split: batched greedy rollouts
 * (KV cache), strict parsing, matching at IoU 0.5, COCO-style AP over IoU
 * 0.50:0.95 with boxes scored by their coord tokens' mean log-probability,
 * a per-desc table, overlays, and the files `stage2 eval`, `train` and
 * `stage2 report` share: `eval_summary.json`, `eval_samples.jsonl`,
 * `overlays/<index>.png`.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../data/atomic.ts";
import { loadJsonl } from "../data/jsonl.ts";
import { visionPreprocessFor } from "../model/config.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { readBounds } from "../loop/infer.ts";
import { Progress } from "../loop/progress.ts";
import { SampleStore } from "../loop/samples.ts";
import { checkTokenizerFitsModel } from "../loop/setup.ts";
import { Tokenizer } from "../tokenizer/tokenizer.ts";
import { DEFAULT_OVERLAYS, overlayOf } from "./overlay.ts";
import { type EvalSampleRecord, runEvalRollouts } from "./rollout.ts";
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
  /** Show a progress line with ETA (default true); `tty` forces the mode. */
  progress?: boolean;
  progressTty?: boolean;
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
  store: SampleStore,
  o: RolloutEvaluationOptions,
): Promise<EvalResult> {
  const total = Math.min(store.size, o.maxSamples ?? store.size);
  const progress = o.progress === false ? null : new Progress({
    total,
    start: 0,
    tty: o.progressTty,
    label: "eval image",
  });
  const run = await runEvalRollouts(model, tok, store, {
    maxSamples: o.maxSamples,
    maxNewTokens: o.maxNewTokens,
    batchSize: o.batchSize,
    onProgress: progress
      ? (done, tokens, seconds) =>
        progress.update(
          done,
          `rollouts, ${(tokens / Math.max(seconds, 1e-9)).toFixed(0)} tok/s`,
          true,
        )
      : undefined,
  });
  progress?.done();
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
 * `stage2 eval`: loads a checkpoint and a JSONL split, checks that every
 * image of the evaluated records decodes (a bad record fails before any
 * rollout, naming `file:line`), evaluates and writes the outputs.
 */
export async function evaluateCheckpoint(
  o: CheckpointEvalOptions,
): Promise<EvalResult & { summaryPath: string }> {
  const records = await loadJsonl(o.data);
  const model = await asInputError(
    o.checkpoint,
    () => Qwen3VLForConditionalGeneration.load(o.checkpoint),
  );
  try {
    const tok = await asInputError(o.checkpoint, async () => {
      const t = await Tokenizer.fromFile(join(o.checkpoint, "tokenizer.json"));
      checkTokenizerFitsModel(t, model, o.checkpoint);
      return t;
    });
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
    const r = await rolloutEvaluation(model, tok, store, {
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

/** A checkpoint or data file that cannot be used (bad input, exit 2). */
export class EvalInputError extends Error {
  override name = "EvalInputError";
}

async function asInputError<T>(
  where: string,
  f: () => Promise<T>,
): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    throw new EvalInputError(msg.includes(where) ? msg : `${where}: ${msg}`);
  }
}

/** `global_step` from the checkpoint's trainer_state.json, if any. */
async function checkpointStep(dir: string): Promise<number | null> {
  try {
    const s = JSON.parse(
      await Deno.readTextFile(join(dir, "trainer_state.json")),
    ) as { global_step?: unknown };
    return typeof s.global_step === "number" ? s.global_step : null;
  } catch {
    return null;
  }
}
