/**
 * Set-up and tear-down of one training run: the run folder and its resume
 * point, then everything the loop holds for the run's whole life (data,
 * tokenizer, model, variant, optimizer, data order, RNG streams, metrics and
 * trace) in one plain record, the `Session`. `train.ts` reads it top down.
 */
import { join, resolve } from "node:path";
import { initRuntime, tf } from "../runtime.ts";
import { configHash, writeResolvedConfig } from "../config/mod.ts";
import type { Stage2Config } from "../config/schema.ts";
import { RngStreams } from "../common/rng.ts";
import { visionPreprocessFor } from "../model/config.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { TraceRecorder } from "../trace/recorder.ts";
import { AdamW } from "./adamw.ts";
import { InputError } from "../errors.ts";
import {
  OPTIMIZER_FILE,
  readOptimizerState,
  type TrainerState,
} from "./checkpoint.ts";
import {
  EVAL_SUMMARY_FILE,
  type EvalResult,
  type EvalSummary,
} from "../eval/mod.ts";
import { DataOrder } from "./data_order.ts";
import { checkMaxNewTokens } from "./guards.ts";
import { LogAccumulator, MetricsWriter } from "./metrics.ts";
import { prepareRunDir, RUN_COMPLETE_FILE } from "./run_dir.ts";
import { lockRunDir } from "./run_lock.ts";
import { SampleStore, type SampleVision } from "./samples.ts";
import type { ScheduleOptions } from "./schedule.ts";
import {
  buildTokenizerFromRecords,
  checkTokenizerFitsModel,
  createTinyModel,
  loadCheckpointModel,
  resolveData,
  type RunData,
  type RunTokenizer,
  tokenizerFromFile,
} from "./setup.ts";
import { type AnyVariant, createVariant } from "./variants.ts";

/** What `run_complete.json` holds: the run finished all its steps. */
export interface RunComplete {
  global_step: number;
  config_hash: string;
  checkpoint: string;
}

/** What the warm-start (Stage-1) run reports to the run it seeds. */
export interface WarmStartInfo {
  runDir: string;
  checkpoint: string;
  summary: EvalSummary | null;
  /** Eval loss of its initial and final weights. */
  evalLossStart: number | null;
  evalLossEnd: number | null;
}

/**
 * The run folder, locked for this process (`train.lock`) until disposed
 * (`await using`), and where training starts from.
 */
export interface RunFolder extends AsyncDisposable {
  runDir: string;
  /** Checkpoint folder to resume from; null = a fresh run. */
  resumeDir: string | null;
  trainerState: TrainerState | null;
}

/** Everything one run holds from set-up to tear-down. */
export interface Session {
  cfg: Stage2Config;
  T: Stage2Config["training"];
  runDir: string;
  log: (line: string) => void;
  /** `performance.now()` when `train` started, and training seconds before a resume. */
  tStart: number;
  elapsedBefore: number;
  resumeDir: string | null;
  /** Hash of the resolved config (stored in checkpoints and the completion marker). */
  hash: string;
  model: Qwen3VLForConditionalGeneration;
  rtok: RunTokenizer;
  warm: WarmStartInfo | null;
  trainStore: SampleStore;
  valStore: SampleStore;
  variant: AnyVariant;
  /** Dataset-level packing in force (null when the variant packs itself or packing is off). */
  packing: { enabled: boolean; max_length: number } | null;
  params: tf.Variable[];
  opt: AdamW;
  sched: ScheduleOptions;
  order: DataOrder;
  rng: RngStreams;
  logAcc: LogAccumulator;
  metrics: MetricsWriter;
  rec: TraceRecorder;
  /** Completed optimizer updates. */
  globalStep: number;
  /** The newest checkpoint folder. */
  checkpoint: string | null;
  /** Eval loss of the last periodic evaluation. */
  lastEval: number | null;
  /** Run the validation rollouts (F1, AP, ...) at every evaluation. */
  rolloutEval: boolean;
  /** Force the progress display mode (default: bar when stderr is a TTY). */
  progressTty: boolean | undefined;
  /** The last validation rollouts and the step they evaluated. */
  lastRollouts: { step: number; result: EvalResult } | null;
  /** For the `tokens_per_s` timing of the next train line. */
  lastLog: number;
  tokensSinceLog: number;
}

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/**
 * Starts the runtime and opens the run folder under the run-folder safety
 * rules (`prepareRunDir`): takes its lock, then finds the verified resume
 * point (`resume` null = fresh in an empty folder, or with `overwrite`
 * after removing only what stage2 wrote; "auto" = the folder's newest
 * complete checkpoint; or a checkpoint folder).
 */
export async function openRunFolder(
  cfg: Stage2Config,
  o: { resume: string | null | undefined; overwrite: boolean },
  log: (line: string) => void,
): Promise<RunFolder> {
  await initRuntime({ threads: cfg.training.threads ?? undefined, log });
  const runDir = resolve(cfg.training.output_dir);
  const lock = await lockRunDir(runDir, log);
  try {
    const start = await prepareRunDir(runDir, {
      resume: o.resume !== undefined ? o.resume : cfg.training.resume,
      overwrite: o.overwrite,
      variant: cfg.custom.trainer_variant,
      log,
    });
    return { runDir, ...start, [Symbol.asyncDispose]: lock.release };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** The finished run this folder already holds, when resuming it asks for no more steps. */
export async function completedRun(
  folder: RunFolder,
  maxSteps: number,
): Promise<{ done: RunComplete; summary: EvalSummary | null } | null> {
  const st = folder.trainerState;
  if (!st || st.global_step < maxSteps) return null;
  const done = await readJson<RunComplete>(
    join(folder.runDir, RUN_COMPLETE_FILE),
  );
  if (!done || done.global_step !== st.global_step) return null;
  const summary = await readJson<EvalSummary>(
    join(folder.runDir, EVAL_SUMMARY_FILE),
  );
  return { done, summary };
}

/**
 * The model and tokenizer the run starts from: the resume checkpoint, else
 * `model.checkpoint`, else the warm-start run's checkpoint (trained by
 * `warmStart` when needed), else a fresh tiny model.
 */
async function startingModel(
  cfg: Stage2Config,
  folder: RunFolder,
  data: RunData,
  warmStart: (cfg: Stage2Config) => Promise<WarmStartInfo>,
): Promise<{
  model: Qwen3VLForConditionalGeneration;
  rtok: RunTokenizer;
  warm: WarmStartInfo | null;
}> {
  const dir = folder.resumeDir;
  if (dir) {
    return {
      rtok: await tokenizerFromFile(join(dir, "tokenizer.json")),
      model: await loadCheckpointModel(dir),
      warm: null,
    };
  }
  let ckpt = cfg.model.checkpoint;
  let warm: WarmStartInfo | null = null;
  if (ckpt === null && cfg.model.warm_start_config !== null) {
    warm = await warmStart(cfg);
    ckpt = warm.checkpoint;
  }
  if (ckpt !== null) {
    const rtok = await tokenizerFromFile(
      cfg.model.tokenizer ?? join(ckpt, "tokenizer.json"),
    );
    return {
      rtok,
      model: await loadCheckpointModel(ckpt),
      warm,
    };
  }
  const rtok = cfg.model.tokenizer !== null
    ? await tokenizerFromFile(cfg.model.tokenizer)
    : buildTokenizerFromRecords(data.train);
  return {
    rtok,
    model: createTinyModel(rtok.tokenizer, cfg.training.seed),
    warm,
  };
}

/**
 * Start-up guardrail of dataset packing: every training sample must fit in
 * one packed row. (The variant checked the 4-row position ids when it was
 * created; see `packingRope`.)
 */
function checkPackedLengths(cfg: Stage2Config, store: SampleStore): void {
  const max = cfg.training.packing.max_length;
  let worst = 0;
  for (let i = 1; i < store.size; i++) {
    if (store.lengths[i] > store.lengths[worst]) worst = i;
  }
  if (store.lengths[worst] > max) {
    throw new InputError(
      `training.packing.max_length ${max} is shorter than training sample ${
        store.records[worst].source
      } (${
        store.lengths[worst]
      } tokens); raise training.packing.max_length to at least ${
        store.lengths[worst]
      } or set training.packing.enabled: false`,
    );
  }
}

/** What a resume restores besides the weights: the loop's own state. */
interface LoopState {
  opt: AdamW;
  order: DataOrder;
  rng: RngStreams;
  logAcc: LogAccumulator;
  variant: AnyVariant;
}

/**
 * Restores optimizer moments, data cursor, RNG streams, logging sums and
 * variant state from the resume checkpoint; returns the restored step and
 * the training seconds before it.
 */
async function restoreState(
  parts: LoopState,
  dir: string,
  st: TrainerState,
  hash: string,
  log: (line: string) => void,
): Promise<{ globalStep: number; elapsedBefore: number }> {
  const o = await readOptimizerState(dir);
  try {
    parts.opt.importState(o.state, o.step);
  } catch (e) {
    throw new InputError(
      `${join(dir, OPTIMIZER_FILE)}: ${
        (e as Error).message
      }; resume with the config that wrote ${dir}`,
      { cause: e },
    );
  }
  parts.order.seek(st.data_cursor);
  parts.rng.restore(st.rng);
  parts.logAcc.restore(st.log_window);
  if (parts.variant.restore) parts.variant.restore(st.variant_state);
  if (st.config_hash !== hash) {
    log(
      `note: the config differs from the one ${dir} was trained with; continuing with the new one`,
    );
  }
  return { globalStep: st.global_step, elapsedBefore: st.elapsed_s ?? 0 };
}

/**
 * Everything the run needs before its first step: the resolved config in
 * the folder, data, tokenizer, model, the variant (whose start-up
 * guardrails run here), optimizer, data order, RNG streams, metrics and
 * trace, restored from the resume checkpoint when there is one.
 */
export async function setUpSession(
  cfg: Stage2Config,
  folder: RunFolder,
  env: {
    log: (line: string) => void;
    tStart: number;
    warmStart: (cfg: Stage2Config) => Promise<WarmStartInfo>;
    rolloutEval: boolean;
    progressTty?: boolean;
  },
): Promise<Session> {
  const T = cfg.training;
  const { runDir, resumeDir } = folder;
  await writeResolvedConfig(runDir, cfg);
  const data = await resolveData(cfg, runDir, env.log);
  const { model, rtok, warm } = await startingModel(
    cfg,
    folder,
    data,
    env.warmStart,
  );
  const tok = rtok.tokenizer;
  checkTokenizerFitsModel(
    tok,
    model,
    resumeDir ?? cfg.model.checkpoint ?? "model",
  );
  checkMaxNewTokens(
    cfg.custom.extra.rollout_matching.max_new_tokens,
    model,
    "custom.extra.rollout_matching.max_new_tokens",
  );
  const vision: SampleVision = {
    ...visionPreprocessFor(model.config),
    minPixels: cfg.data.min_pixels,
    maxPixels: cfg.data.max_pixels,
  };
  const trainStore = new SampleStore(data.train, tok, vision, data.trainImages);
  const valStore = new SampleStore(data.val, tok, vision);
  const variant = await createVariant({
    model,
    tokenizer: tok,
    config: cfg,
    trainingSeed: T.seed,
  });
  const packing = variant.datasetPacking ? T.packing : null;
  if (packing) checkPackedLengths(cfg, trainStore);
  const params = model.trainableVariables();
  const parts: LoopState = {
    opt: new AdamW(params, {
      beta1: T.adam_beta1,
      beta2: T.adam_beta2,
      epsilon: T.adam_epsilon,
      weightDecay: T.weight_decay,
    }, model.specs.map((sp) => sp.name)), // HF names: TF.js variable names are process-unique
    order: new DataOrder(trainStore.size, T.seed),
    rng: new RngStreams(T.seed),
    logAcc: new LogAccumulator(),
    variant,
  };
  const hash = configHash(cfg);
  const restored = resumeDir && folder.trainerState
    ? await restoreState(parts, resumeDir, folder.trainerState, hash, env.log)
    : { globalStep: 0, elapsedBefore: 0 };
  const metrics = new MetricsWriter(runDir);
  if (resumeDir) await metrics.truncateAfter(restored.globalStep);
  const rec = TraceRecorder.open(runDir, {
    level: T.trace,
    variant: variant.name,
    resumeFromStep: resumeDir ? restored.globalStep : null,
    tapeProbe: () => tf.engine().state.gradientDepth > 0,
    observe: {
      coordTokenIds: tok.coordIds,
      softctxTemperature: cfg.custom.extra.stage2_ab.softctx_temperature,
    },
  });
  model.setTracer(rec.modelTracer);
  return {
    cfg,
    T,
    runDir,
    log: env.log,
    tStart: env.tStart,
    resumeDir,
    hash,
    model,
    rtok,
    warm,
    trainStore,
    valStore,
    packing,
    params,
    ...parts,
    sched: {
      kind: T.lr_scheduler,
      baseLr: T.learning_rate,
      warmupSteps: T.warmup_steps,
      maxSteps: T.max_steps,
    },
    metrics,
    rec,
    ...restored,
    checkpoint: resumeDir,
    lastEval: null,
    rolloutEval: env.rolloutEval,
    progressTty: env.progressTty,
    lastRollouts: null,
    lastLog: performance.now(),
    tokensSinceLog: 0,
  };
}

/** Releases what the session holds (also after a failed step). */
export function closeSession(s: Session): void {
  s.rec.close();
  s.model.setTracer(undefined);
  s.opt.dispose();
  s.model.dispose();
}
