/**
 * The training loop shared by every trainer variant: optimizer, gradient
 * accumulation, clipping, seeded data order, checkpoints with exact resume,
 * metrics, periodic evaluation, the trace's step context, and the final
 * evaluation summary. What a micro-batch means is the variant's business
 * (see `variant.ts`).
 *
 * Determinism: with the same config and seed, two runs give bitwise-equal
 * weights and equal `metrics.jsonl` lines apart from `timing`; a run killed
 * after a checkpoint and resumed continues exactly (weights, optimizer
 * moments, data cursor, RNG streams and partial logging sums are all
 * restored).
 */
import { dirname, join, resolve } from "node:path";
import { initRuntime, tf } from "../runtime.ts";
import { configHash, loadConfig, writeResolvedConfig } from "../config/mod.ts";
import type { Stage2Config } from "../config/schema.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { visionPreprocessFor } from "../model/config.ts";
import { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import { TraceRecorder } from "../trace/recorder.ts";
import { AdamW } from "./adamw.ts";
import {
  readOptimizerState,
  readTrainerState,
  type TrainerState,
  writeOptimizerState,
  writeTrainerState,
} from "./checkpoint.ts";
import { DataOrder } from "./data_order.ts";
import {
  EVAL_SUMMARY_FILE,
  evalLoss,
  type EvalSummary,
  formatSummary,
  rolloutSummary,
  writeEvalSummary,
} from "./evaluate.ts";
import { clipByGlobalNorm, GradAccumulator } from "./grads.ts";
import {
  LogAccumulator,
  METRICS_FILE,
  MetricsWriter,
  WindowMetrics,
} from "./metrics.ts";
import { writePreprocessorConfig } from "./infer.ts";
import { formatDuration, Progress } from "./progress.ts";
import { RngStreams } from "./rng.ts";
import {
  LATEST_FILE,
  latestCheckpoint,
  listCheckpoints,
  rotateCheckpoints,
  writeCheckpointDir,
} from "./run_dir.ts";
import { SampleStore, type SampleVision } from "./samples.ts";
import { learningRate, type ScheduleOptions } from "./schedule.ts";
import {
  buildTokenizerFromRecords,
  checkTokenizerFitsModel,
  createTinyModel,
  resolveData,
  type RunTokenizer,
  tokenizerFromFile,
} from "./setup.ts";
import { ropeFnFor } from "./sft.ts";
import type { PassInfo, TrainContext } from "./variant.ts";
import { type AnyVariant, createVariant } from "./variants.ts";

export const RUN_COMPLETE_FILE = "run_complete.json";

export interface TrainOptions {
  config: Stage2Config;
  /**
   * Overrides `training.resume`: null = start fresh, "auto" = the run
   * folder's latest checkpoint (fresh when there is none), or a checkpoint
   * folder.
   */
  resume?: string | null;
  /** Log sink (default: stderr). */
  log?: (line: string) => void;
  /** Force the progress display mode (default: bar when stderr is a TTY). */
  progressTty?: boolean;
  /**
   * Stop this process after this many completed steps, as if it were
   * killed there (no final evaluation, no completion marker). Used to
   * exercise resume.
   */
  stopAfterStep?: number;
  /** Skip the final rollout summary (the eval loss still runs). */
  skipRolloutEval?: boolean;
  /** Nesting depth of warm starts (guards against cycles). */
  warmStartDepth?: number;
}

export interface TrainResult {
  runDir: string;
  /** Completed optimizer updates. */
  globalStep: number;
  /** The newest checkpoint folder. */
  checkpoint: string | null;
  /** Eval loss of the starting weights and of the final weights (NaN without validation data). */
  evalLossStart: number | null;
  evalLossEnd: number | null;
  summary: EvalSummary | null;
  /** The warm-start run's own results, when this run started from one. */
  warmStart: WarmStartInfo | null;
  /** True when `stopAfterStep` ended the run early. */
  stopped: boolean;
  wallSeconds: number;
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

interface RunComplete {
  global_step: number;
  config_hash: string;
  checkpoint: string;
}

const MAX_WARM_START_DEPTH = 4;

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/** Removes what a previous run left in the folder (not the synthetic data). */
async function clearRun(runDir: string): Promise<void> {
  for (const c of await listCheckpoints(runDir)) {
    await Deno.remove(c.dir, { recursive: true });
  }
  for (
    const f of [
      LATEST_FILE,
      METRICS_FILE,
      EVAL_SUMMARY_FILE,
      RUN_COMPLETE_FILE,
    ]
  ) {
    await Deno.remove(join(runDir, f)).catch(() => {});
  }
}

/** The `eval_loss` values of a run's metrics.jsonl, in order. */
async function evalLosses(runDir: string): Promise<number[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(join(runDir, METRICS_FILE));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const l of text.split("\n")) {
    try {
      const o = JSON.parse(l);
      if (o.kind === "eval" && typeof o.eval_loss === "number") {
        out.push(o.eval_loss);
      }
    } catch {
      // blank or torn line
    }
  }
  return out;
}

/** Trains the warm-start config (or reuses its finished run); returns its final checkpoint. */
async function warmStart(
  cfg: Stage2Config,
  opts: TrainOptions,
  log: (s: string) => void,
): Promise<WarmStartInfo> {
  const depth = (opts.warmStartDepth ?? 0) + 1;
  const path = cfg.model.warm_start_config!;
  if (depth > MAX_WARM_START_DEPTH) {
    throw new Error(
      `model.warm_start_config chains more than ${MAX_WARM_START_DEPTH} configs deep (at ${path}); is there a cycle?`,
    );
  }
  const ws = await loadConfig(path);
  const hash = configHash(ws);
  const runDir = join(
    dirname(resolve(cfg.training.output_dir)),
    "warm_start",
    `${ws.custom.trainer_variant}-${hash.slice(0, 12)}`,
  );
  const done = await readJson<RunComplete>(join(runDir, RUN_COMPLETE_FILE));
  if (done && done.config_hash === hash) {
    log(`warm start: reusing the finished run ${runDir}`);
    const evals = await evalLosses(runDir);
    return {
      checkpoint: join(runDir, done.checkpoint),
      runDir,
      summary: await readJson<EvalSummary>(join(runDir, EVAL_SUMMARY_FILE)),
      evalLossStart: evals.at(0) ?? null,
      evalLossEnd: evals.at(-1) ?? null,
    };
  }
  log(`warm start: training ${path} into ${runDir}`);
  const r = await train({
    ...opts,
    config: {
      ...ws,
      training: { ...ws.training, output_dir: runDir, resume: "auto" },
    },
    resume: "auto",
    stopAfterStep: undefined,
    warmStartDepth: depth,
  });
  return {
    checkpoint: r.checkpoint!,
    runDir,
    summary: r.summary,
    evalLossStart: r.evalLossStart,
    evalLossEnd: r.evalLossEnd,
  };
}

/** Takes the next micro-batch's sample indices from the data order. */
function drawMicroBatch(
  order: DataOrder,
  lengths: number[],
  microBatchSize: number,
  packing: { enabled: boolean; max_length: number } | null,
): number[] {
  if (!packing) return order.take(microBatchSize);
  const idx = [order.next()];
  let total = lengths[idx[0]];
  while (idx.length < microBatchSize) {
    const next = order.peek();
    if (total + lengths[next] > packing.max_length) break;
    total += lengths[next];
    idx.push(order.next());
  }
  return idx;
}

/** Start-up guardrail: dataset packing needs every sample to fit and 4-row ids. */
async function checkPacking(
  cfg: Stage2Config,
  store: SampleStore,
  model: Qwen3VLForConditionalGeneration,
): Promise<void> {
  const max = cfg.training.packing.max_length;
  let worst = 0;
  for (let i = 1; i < store.size; i++) {
    if (store.lengths[i] > store.lengths[worst]) worst = i;
  }
  if (store.lengths[worst] > max) {
    throw new Error(
      `training.packing.max_length ${max} is shorter than training sample ${
        store.records[worst].source
      } (${
        store.lengths[worst]
      } tokens); raise training.packing.max_length to at least ${
        store.lengths[worst]
      } or set training.packing.enabled: false`,
    );
  }
  try {
    const s = await store.get(0);
    const rows = ropeFnFor(model.config)(s.inputIds, s.imageGridThw);
    if (rows.length !== 3 || rows.some((r) => r.length !== s.inputIds.length)) {
      throw new Error(`mRoPE rows do not cover ${s.record.source}`);
    }
  } catch (e) {
    throw new Error(
      `training.packing.enabled needs 4-row position ids [text; t; h; w] from the model's getRopeIndex, which failed (${
        (e as Error).message
      }); set training.packing.enabled: false to train unpacked`,
    );
  }
}

/** Runs one training config end to end. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const tStart = performance.now();
  const cfg = opts.config;
  const log = opts.log ?? ((s: string) => console.error(s));
  await initRuntime({ threads: cfg.training.threads ?? undefined, log });
  const runDir = resolve(cfg.training.output_dir);
  await Deno.mkdir(runDir, { recursive: true });
  const T = cfg.training;

  // --- resume point -------------------------------------------------------
  const resumeSetting = opts.resume !== undefined ? opts.resume : T.resume;
  let resumeDir: string | null = null;
  if (resumeSetting === "auto") {
    resumeDir = await latestCheckpoint(runDir);
    if (resumeDir) log(`resuming from ${resumeDir}`);
  } else if (resumeSetting) {
    resumeDir = resolve(resumeSetting);
    log(`resuming from ${resumeDir}`);
  }
  if (!resumeDir) await clearRun(runDir);
  const trainerState: TrainerState | null = resumeDir
    ? await readTrainerState(resumeDir)
    : null;
  if (trainerState && trainerState.global_step >= T.max_steps) {
    const done = await readJson<RunComplete>(join(runDir, RUN_COMPLETE_FILE));
    if (done && done.global_step === trainerState.global_step) {
      log(
        `nothing to do: the run already completed ${done.global_step} steps; run folder: ${runDir}`,
      );
      const summary = await readJson<EvalSummary>(
        join(runDir, EVAL_SUMMARY_FILE),
      );
      return {
        runDir,
        globalStep: done.global_step,
        checkpoint: join(runDir, done.checkpoint),
        evalLossStart: null,
        evalLossEnd: summary?.eval_loss ?? null,
        summary,
        warmStart: null,
        stopped: false,
        wallSeconds: (performance.now() - tStart) / 1000,
      };
    }
  }
  await writeResolvedConfig(runDir, cfg);

  // --- data, tokenizer, model ----------------------------------------------
  const data = await resolveData(cfg, runDir, log);
  let rtok: RunTokenizer;
  let model: Qwen3VLForConditionalGeneration;
  let warm: TrainResult["warmStart"] = null;
  if (resumeDir) {
    rtok = await tokenizerFromFile(join(resumeDir, "tokenizer.json"));
    model = await Qwen3VLForConditionalGeneration.load(resumeDir);
  } else {
    let ckpt = cfg.model.checkpoint;
    if (ckpt === null && cfg.model.warm_start_config !== null) {
      warm = await warmStart(cfg, opts, log);
      ckpt = warm.checkpoint;
    }
    if (ckpt !== null) {
      rtok = await tokenizerFromFile(
        cfg.model.tokenizer ?? join(ckpt, "tokenizer.json"),
      );
      model = await Qwen3VLForConditionalGeneration.load(ckpt);
    } else {
      rtok = cfg.model.tokenizer !== null
        ? await tokenizerFromFile(cfg.model.tokenizer)
        : buildTokenizerFromRecords(data.train);
      model = createTinyModel(rtok.tokenizer, T.seed);
    }
  }
  const tok = rtok.tokenizer;
  checkTokenizerFitsModel(
    tok,
    model,
    resumeDir ?? cfg.model.checkpoint ?? "model",
  );

  const vision: SampleVision = {
    ...visionPreprocessFor(model.config),
    minPixels: cfg.data.min_pixels,
    maxPixels: cfg.data.max_pixels,
  };
  const trainStore = new SampleStore(data.train, tok, vision, data.trainImages); // [learn hook]
  const valStore = new SampleStore(data.val, tok, vision);

  const variant: AnyVariant = await createVariant({
    model,
    tokenizer: tok,
    config: cfg,
    trainingSeed: T.seed,
  });
  const packing = variant.datasetPacking ? T.packing : null;
  if (packing) await checkPacking(cfg, trainStore, model);

  // --- optimizer and state ---------------------------------------------------
  const params = model.trainableVariables();
  const opt = new AdamW(params, {
    beta1: T.adam_beta1,
    beta2: T.adam_beta2,
    epsilon: T.adam_epsilon,
    weightDecay: T.weight_decay,
  }, model.specs.map((sp) => sp.name)); // HF names: TF.js variable names are process-unique
  const order = new DataOrder(trainStore.size, T.seed);
  const rng = new RngStreams(T.seed);
  const logAcc = new LogAccumulator();
  let globalStep = 0;
  let elapsedBefore = 0;
  const hash = configHash(cfg);
  if (resumeDir && trainerState) {
    const o = await readOptimizerState(resumeDir);
    opt.importState(o.state, o.step);
    order.seek(trainerState.data_cursor);
    rng.restore(trainerState.rng);
    logAcc.restore(trainerState.log_window);
    if (variant.restore) variant.restore(trainerState.variant_state);
    globalStep = trainerState.global_step;
    elapsedBefore = trainerState.elapsed_s ?? 0;
    if (trainerState.config_hash !== hash) {
      log(
        `note: the config differs from the one ${resumeDir} was trained with; continuing with the new one`,
      );
    }
  }
  const metrics = new MetricsWriter(runDir);
  if (resumeDir) await metrics.truncateAfter(globalStep);
  const rec = TraceRecorder.open(runDir, {
    level: T.trace,
    variant: variant.name,
    resumeFromStep: resumeDir ? globalStep : null,
    tapeProbe: () => tf.engine().state.gradientDepth > 0,
  });
  model.setTracer(rec.tracer);

  const sched: ScheduleOptions = {
    kind: T.lr_scheduler,
    baseLr: T.learning_rate,
    warmupSteps: T.warmup_steps,
    maxSteps: T.max_steps,
  };
  const evalOpts = {
    maxSamples: T.eval_max_samples,
    microBatchSize: T.micro_batch_size,
    packing: T.packing,
    padId: tok.specialIds.pad,
    trace: rec,
  };
  const runEval = async (): Promise<number | null> => {
    if (valStore.size === 0) return null;
    const v = await evalLoss(model, valStore, { ...evalOpts, globalStep });
    await metrics.append({
      step: globalStep,
      kind: "eval",
      values: { eval_loss: v },
      timing: {
        elapsed_s: elapsedBefore + (performance.now() - tStart) / 1000,
      },
    });
    return v;
  };

  let checkpoint: string | null = resumeDir;
  const save = async () => {
    const elapsed = elapsedBefore + (performance.now() - tStart) / 1000;
    checkpoint = await writeCheckpointDir(runDir, globalStep, async (dir) => {
      await model.save(dir);
      await writeFileAtomic(join(dir, "tokenizer.json"), rtok.json);
      await writePreprocessorConfig(dir, model, {
        min_pixels: cfg.data.min_pixels,
        max_pixels: cfg.data.max_pixels,
      });
      await writeOptimizerState(dir, opt.exportState(), opt.step);
      await writeTrainerState(dir, {
        global_step: globalStep,
        max_steps: T.max_steps,
        training_seed: T.seed,
        config_hash: hash,
        data_cursor: order.position(),
        rng: rng.state(),
        log_window: logAcc.state(),
        elapsed_s: elapsed,
        variant: variant.name,
        variant_state: variant.state ? variant.state() : null,
      });
    });
    rec.checkpoint(globalStep);
    await rotateCheckpoints(runDir, T.save_total_limit, checkpoint);
  };

  log(
    `run ${runDir}: ${variant.name}, ${trainStore.size} train / ${valStore.size} val samples, ${
      params.reduce((n, p) => n + p.size, 0)
    } parameters, ${T.max_steps} steps x ${T.gradient_accumulation_steps} micro-batches of ${T.micro_batch_size}${
      packing ? ` (packed, max ${packing.max_length} tokens)` : ""
    }`,
  );

  let evalLossStart: number | null = null;
  if (globalStep === 0) evalLossStart = await runEval();

  // --- the loop ----------------------------------------------------------------
  const progress = new Progress({
    total: T.max_steps,
    start: globalStep,
    tty: opts.progressTty,
  });
  let stopped = false;
  let lastLog = performance.now();
  let tokensSinceLog = 0;
  let lastEval: number | null = null;
  try {
    while (globalStep < T.max_steps) {
      const GA = T.gradient_accumulation_steps;
      const plan = variant.planStep(globalStep, GA, false);
      const window = new WindowMetrics();
      const acc = new GradAccumulator();
      let tokens = 0;
      for (let mb = 0; mb < GA; mb++) {
        const indices = drawMicroBatch(
          order,
          trainStore.lengths,
          T.micro_batch_size,
          packing,
        );
        const samples = await trainStore.getMany(indices);
        tokens += samples.reduce((n, s) => n + s.inputIds.length, 0);
        const ctx: TrainContext<Qwen3VLForConditionalGeneration> = {
          model,
          tokenizer: tok,
          config: cfg,
          globalStep,
          microBatch: mb,
          windowSize: GA,
          trainingSeed: T.seed,
          setPass: (p: PassInfo) => rec.updateContext(p),
          trace: rec,
          metrics: window,
          rng: (name: string) => rng.get(name),
          runDir,
        };
        const baseContext = {
          globalStep,
          channel: plan.channel as "A" | "B" | "sft",
          purpose: "train" as const,
          microBatch: mb,
          pass: 0,
          nPasses: plan.nPasses,
          gradRecorded: false,
          training: true,
          packed: false,
          segmentLengths: null,
          softctx: null,
        };
        rec.setContext(baseContext);
        const prepared = await variant.prepare(ctx, samples, plan);
        try {
          rec.setContext(baseContext);
          const kept: tf.Tensor[] = [];
          let reported: Record<string, number | tf.Scalar> = {};
          const { value, grads } = tf.variableGrads(() => {
            const r = variant.loss(ctx, prepared);
            for (const v of Object.values(r.metrics)) {
              if (v instanceof tf.Tensor) kept.push(tf.keep(v));
            }
            reported = r.metrics;
            return r.loss;
          }, params);
          window.mean("loss", value.dataSync()[0]);
          for (const [k, v] of Object.entries(reported)) {
            window.mean(k, typeof v === "number" ? v : v.dataSync()[0]);
          }
          for (const t of new Set([...kept, value])) t.dispose();
          acc.add(grads);
        } finally {
          rec.setContext(null);
          variant.dispose?.(prepared);
        }
      }
      const grads = acc.mean();
      const gradNorm = clipByGlobalNorm(grads, T.max_grad_norm);
      const lr = learningRate(globalStep, sched);
      opt.apply(grads, lr);
      for (const g of Object.values(grads)) g.dispose();
      rec.step({
        globalStep,
        pattern: plan.pattern as ("A" | "B")[] | null,
        channel: plan.channel as "A" | "B" | "sft",
        trainingSeed: T.seed,
        rolloutSeedBase: plan.rolloutSeedBase,
        freshRollouts: plan.freshRollouts,
        bufferReuse: plan.bufferReuse,
        windowSize: GA,
        partialWindow: false,
      });
      // `rollout/*` values are facts of this step's rollouts (the seed base
      // is an id, not a quantity): they get one exact line per step instead
      // of a mean over the logging window.
      const stepValues = window.flush();
      const rolloutFacts = Object.fromEntries(
        Object.entries(stepValues).filter(([k]) => k.startsWith("rollout/")),
      );
      for (const k of Object.keys(rolloutFacts)) delete stepValues[k];
      if (Object.keys(rolloutFacts).length > 0) {
        await metrics.append({
          step: globalStep + 1,
          kind: "rollout",
          values: { global_step: globalStep, ...rolloutFacts },
          timing: {},
        });
      }
      globalStep++;
      tokensSinceLog += tokens;
      const cursor = order.position();
      logAcc.add({
        ...stepValues,
        lr,
        grad_norm: gradNorm,
        tokens,
      });

      const elapsed = () => elapsedBefore + (performance.now() - tStart) / 1000;
      if (globalStep % T.logging_steps === 0 || globalStep === T.max_steps) {
        const values = logAcc.flush();
        const now = performance.now();
        const secs = (now - lastLog) / 1000;
        await metrics.append({
          step: globalStep,
          kind: "train",
          values: {
            epoch: cursor.epoch + cursor.offset / trainStore.size,
            ...values,
          },
          timing: {
            elapsed_s: elapsed(),
            tokens_per_s: tokensSinceLog / Math.max(secs, 1e-9),
          },
        });
        lastLog = now;
        tokensSinceLog = 0;
        const line = `loss ${values.loss?.toFixed(4)} lr ${
          lr.toExponential(2)
        }`;
        if (progress.tty) progress.update(globalStep, line);
        else progress.update(globalStep, line, true);
      } else if (progress.tty) {
        progress.update(globalStep, "");
      }
      if (T.eval_steps > 0 && globalStep % T.eval_steps === 0) {
        lastEval = await runEval();
        if (lastEval !== null) {
          progress.log(`step ${globalStep}: eval loss ${lastEval.toFixed(4)}`);
        }
      }
      if (
        (T.save_steps > 0 && globalStep % T.save_steps === 0) ||
        globalStep === T.max_steps
      ) {
        await save();
      }
      if (
        opts.stopAfterStep !== undefined && globalStep >= opts.stopAfterStep
      ) {
        stopped = globalStep < T.max_steps;
        break;
      }
    }
    progress.done();

    // --- final evaluation --------------------------------------------------------
    let summary: EvalSummary | null = null;
    let evalLossEnd: number | null = null;
    if (!stopped) {
      if (
        checkpoint === null || !checkpoint.endsWith(`checkpoint-${globalStep}`)
      ) {
        await save();
      }
      evalLossEnd = T.eval_steps > 0 && globalStep % T.eval_steps === 0 &&
          lastEval !== null
        ? lastEval
        : await runEval();
      if (!opts.skipRolloutEval && valStore.size > 0) {
        rec.setContext(null);
        summary = await rolloutSummary(model, tok, valStore, {
          maxSamples: T.eval_max_samples,
          maxNewTokens: cfg.custom.extra.rollout_matching.max_new_tokens,
          batchSize: Math.max(1, T.micro_batch_size * 4),
          globalStep,
          evalLoss: evalLossEnd,
        });
        await writeEvalSummary(runDir, summary);
        log(formatSummary(summary, variant.name));
      }
      await writeFileAtomic(
        join(runDir, RUN_COMPLETE_FILE),
        JSON.stringify(
          {
            global_step: globalStep,
            config_hash: hash,
            checkpoint: `checkpoint-${globalStep}`,
          } satisfies RunComplete,
          null,
          2,
        ) + "\n",
      );
    }
    const wallSeconds = (performance.now() - tStart) / 1000;
    log(
      `${stopped ? "stopped" : "finished"} at step ${globalStep} in ${
        formatDuration(wallSeconds)
      }; run folder: ${runDir}`,
    );
    return {
      runDir,
      globalStep,
      checkpoint,
      evalLossStart,
      evalLossEnd,
      summary,
      warmStart: warm,
      stopped,
      wallSeconds,
    };
  } finally {
    rec.close();
    model.setTracer(undefined);
    opt.dispose();
    model.dispose();
  }
}
