/**
 * The pieces of one optimizer step, in the order `train()` calls them:
 * forward/backward over the accumulation window (per micro-batch: draw
 * samples, the variant's `prepare` outside the tape, its `loss` inside it),
 * the optimizer update, the step's records (trace step line, the variant's
 * fact lines), logging, periodic evaluation and checkpoints.
 */
import { join } from "node:path";
import { tf } from "../runtime.ts";
import { writeFileAtomic } from "../data/atomic.ts";
import { summaryMetrics } from "../eval/mod.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";
import type { ForwardContext } from "../trace/schema.ts";
import type {
  PassInfo,
  RawSample,
  StepPlan,
  TrainContext,
} from "../variant/contract.ts";
import { writeOptimizerState, writeTrainerState } from "./checkpoint.ts";
import type { DataOrder } from "./data_order.ts";
import { evalLoss, rolloutEvalWithProgress } from "./evaluate.ts";
import { GradAccumulator } from "./grads.ts";
import { checkFiniteStep } from "./guards.ts";
import type { WindowMetrics } from "./metrics.ts";
import { writePreprocessorConfig } from "./infer.ts";
import type { Progress } from "./progress.ts";
import { rotateCheckpoints, writeCheckpointDir } from "./run_dir.ts";
import { learningRate } from "./schedule.ts";
import type { Session } from "./session.ts";

/** Seconds of training so far, across resumes (timing fields only). */
export function elapsed(s: Session): number {
  return s.elapsedBefore + (performance.now() - s.tStart) / 1000;
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

/** What the loop hands the variant for micro-batch `mb` of the step being built. */
function trainContext(
  s: Session,
  mb: number,
  window: WindowMetrics,
): TrainContext<Qwen3VLForConditionalGeneration> {
  return {
    model: s.model,
    tokenizer: s.rtok.tokenizer,
    config: s.cfg,
    globalStep: s.globalStep,
    microBatch: mb,
    windowSize: s.T.gradient_accumulation_steps,
    trainingSeed: s.T.seed,
    setPass: (p: PassInfo) => s.rec.updateContext(p),
    trace: s.rec,
    metrics: window,
    rng: (name: string) => s.rng.get(name),
    runDir: s.runDir,
  };
}

/** The trace context every forward of a training micro-batch starts from. */
function baseTraceContext(
  s: Session,
  plan: StepPlan,
  mb: number,
): ForwardContext {
  return {
    globalStep: s.globalStep,
    channel: plan.channel as "A" | "B" | "sft",
    purpose: "train",
    microBatch: mb,
    pass: 0,
    nPasses: plan.nPasses,
    gradRecorded: false,
    training: true,
    packed: false,
    segmentLengths: null,
  };
}

/**
 * The variant's `loss` inside `tf.variableGrads`: its one gradient-recording
 * forward, the loss value and metrics into `window`, the gradients into
 * `acc`. Returns the loss value.
 */
function backward(
  s: Session,
  ctx: TrainContext<Qwen3VLForConditionalGeneration>,
  prepared: unknown,
  window: WindowMetrics,
  acc: GradAccumulator,
): number {
  const kept: tf.Tensor[] = [];
  let reported: Record<string, number | tf.Scalar> = {};
  const { value, grads } = tf.variableGrads(() => {
    const r = s.variant.loss(ctx, prepared);
    // metric tensors must outlive the tape's tidy
    for (const v of Object.values(r.metrics)) {
      if (v instanceof tf.Tensor) kept.push(tf.keep(v));
    }
    reported = r.metrics;
    return r.loss;
  }, s.params);
  const loss = value.dataSync()[0];
  window.mean("loss", loss);
  for (const [k, v] of Object.entries(reported)) {
    window.mean(k, typeof v === "number" ? v : v.dataSync()[0]);
  }
  for (const t of new Set([...kept, value])) t.dispose();
  acc.add(grads);
  return loss;
}

/**
 * Forward and backward over the accumulation window: per micro-batch, draw
 * samples, `prepare` (outside the tape), `loss` and its gradients. Every
 * window has `gradient_accumulation_steps` micro-batches (the data order
 * never runs dry, so there is no partial final window). Returns the mean
 * gradient of the window, the tokens it trained on and the loss of each
 * micro-batch.
 */
export async function forwardBackward(
  s: Session,
  plan: StepPlan,
  window: WindowMetrics,
): Promise<
  { grads: Record<string, tf.Tensor>; tokens: number; losses: number[] }
> {
  const acc = new GradAccumulator();
  const losses: number[] = [];
  let tokens = 0;
  for (let mb = 0; mb < s.T.gradient_accumulation_steps; mb++) {
    const indices = drawMicroBatch(
      s.order,
      s.trainStore.lengths,
      s.T.micro_batch_size,
      s.packing,
    );
    const samples: RawSample[] = await s.trainStore.getMany(indices);
    tokens += samples.reduce((n, x) => n + x.inputIds.length, 0);
    const ctx = trainContext(s, mb, window);
    const base = baseTraceContext(s, plan, mb);
    s.rec.setContext(base);
    const prepared = await s.variant.prepare(ctx, samples, plan);
    try {
      s.rec.setContext(base);
      losses.push(backward(s, ctx, prepared, window, acc));
    } finally {
      s.rec.setContext(null);
      s.variant.dispose?.(prepared);
    }
  }
  return { grads: acc.mean(), tokens, losses };
}

/**
 * Stops the run (`RunFailedError`, exit 1) when the step's loss or gradient
 * norm is not finite, before the update: no NaN reaches the weights or a
 * checkpoint, and rotation keeps the good checkpoints. Frees the gradients
 * when it stops.
 */
export function checkStepFinite(
  s: Session,
  grads: Record<string, tf.Tensor>,
  losses: number[],
  gradNorm: number,
): void {
  try {
    checkFiniteStep({
      step: s.globalStep + 1,
      losses,
      gradNorm,
      lr: learningRate(s.globalStep, s.sched),
      checkpoint: s.checkpoint,
    });
  } catch (e) {
    for (const g of Object.values(grads)) g.dispose();
    throw e;
  }
}

/** AdamW with this step's learning rate; frees the gradients. Returns the rate. */
export function optimizerStep(
  s: Session,
  grads: Record<string, tf.Tensor>,
): number {
  const lr = learningRate(s.globalStep, s.sched);
  s.opt.apply(grads, lr);
  for (const g of Object.values(grads)) g.dispose();
  return lr;
}

/**
 * The step's records: its trace step line and the variant's fact lines
 * (`MetricsSink.fact`). Returns the window's reduced values for logging.
 */
export async function recordStep(
  s: Session,
  plan: StepPlan,
  window: WindowMetrics,
): Promise<Record<string, number>> {
  s.rec.step({
    globalStep: s.globalStep,
    pattern: plan.pattern as ("A" | "B")[] | null,
    channel: plan.channel as "A" | "B" | "sft",
    trainingSeed: s.T.seed,
    rolloutSeedBase: plan.rolloutSeedBase,
    freshRollouts: plan.freshRollouts,
    bufferReuse: plan.bufferReuse,
    windowSize: s.T.gradient_accumulation_steps,
  });
  const values = window.flush();
  for (const [kind, facts] of window.flushFacts()) {
    await s.metrics.append({
      step: s.globalStep + 1,
      kind,
      values: { global_step: s.globalStep, ...facts },
      timing: {},
    });
  }
  return values;
}

/**
 * Adds the finished step's values to the logging window; on a logging step
 * (and the last one) writes the window's means as a `train` line.
 */
export async function logStep(
  s: Session,
  values: Record<string, number>,
  progress: Progress,
): Promise<void> {
  s.tokensSinceLog += values.tokens;
  s.logAcc.add(values);
  if (
    s.globalStep % s.T.logging_steps !== 0 && s.globalStep !== s.T.max_steps
  ) {
    if (progress.tty) progress.update(s.globalStep, "");
    return;
  }
  const cursor = s.order.position();
  const means = s.logAcc.flush();
  const now = performance.now();
  const secs = (now - s.lastLog) / 1000;
  await s.metrics.append({
    step: s.globalStep,
    kind: "train",
    values: {
      epoch: cursor.epoch + cursor.offset / s.trainStore.size,
      ...means,
    },
    timing: {
      elapsed_s: elapsed(s),
      tokens_per_s: s.tokensSinceLog / Math.max(secs, 1e-9),
    },
  });
  s.lastLog = now;
  s.tokensSinceLog = 0;
  const line = `loss ${means.loss?.toFixed(4)} lr ${
    values.lr.toExponential(2)
  }`;
  if (progress.tty) progress.update(s.globalStep, line);
  else progress.update(s.globalStep, line, true);
}

/**
 * Evaluation on the validation split: the eval loss and, unless turned off,
 * greedy rollouts with their detection metrics (F1, AP, ...), written as one
 * `eval` line; the rollouts are kept in `s.lastRollouts`. The rollouts are
 * not traced and draw from no RNG stream (greedy decoding), so they leave
 * the training itself unchanged. Null without validation data.
 */
export async function evaluate(s: Session): Promise<number | null> {
  if (s.valStore.size === 0) return null;
  const v = await evalLoss(s.model, s.valStore, {
    maxSamples: s.T.eval_max_samples,
    microBatchSize: s.T.micro_batch_size,
    packing: s.T.packing,
    padId: s.rtok.tokenizer.specialIds.pad,
    trace: s.rec,
    globalStep: s.globalStep,
  });
  const r = s.rolloutEval
    ? await s.rec.suspended(() =>
      rolloutEvalWithProgress(s.model, s.rtok.tokenizer, s.valStore, {
        maxSamples: s.T.eval_max_samples,
        maxNewTokens: s.cfg.custom.extra.rollout_matching.max_new_tokens,
        batchSize: Math.max(1, s.T.micro_batch_size * 4),
        globalStep: s.globalStep,
        evalLoss: v,
        progressTty: s.progressTty,
      })
    )
    : null;
  if (r) s.lastRollouts = { step: s.globalStep, result: r };
  await s.metrics.append({
    step: s.globalStep,
    kind: "eval",
    values: { eval_loss: v, ...(r ? summaryMetrics(r.summary) : {}) },
    timing: { elapsed_s: elapsed(s) },
  });
  return v;
}

/** Periodic evaluation every `training.eval_steps` steps. */
export async function maybeEvaluate(
  s: Session,
  progress: Progress,
): Promise<void> {
  if (s.T.eval_steps <= 0 || s.globalStep % s.T.eval_steps !== 0) return;
  s.lastEval = await evaluate(s);
  if (s.lastEval === null) return;
  const r = s.lastRollouts?.step === s.globalStep
    ? s.lastRollouts.result.summary
    : null;
  const pct = (x: number | null) => x === null ? "n/a" : x.toFixed(3);
  progress.log(
    `step ${s.globalStep}: eval loss ${s.lastEval.toFixed(4)}${
      r ? `, F1@0.5 ${pct(r.f1)}, AP ${pct(r.ap)}` : ""
    }`,
  );
}

/**
 * Writes `checkpoint-<globalStep>/` atomically: model, tokenizer,
 * preprocessor config, optimizer moments and the trainer state resume needs;
 * then marks it in the trace and rotates old checkpoints.
 */
export async function saveCheckpoint(s: Session): Promise<void> {
  const secs = elapsed(s);
  s.checkpoint = await writeCheckpointDir(
    s.runDir,
    s.globalStep,
    async (dir) => {
      await s.model.save(dir);
      await writeFileAtomic(join(dir, "tokenizer.json"), s.rtok.json);
      await writePreprocessorConfig(dir, s.model, {
        min_pixels: s.cfg.data.min_pixels,
        max_pixels: s.cfg.data.max_pixels,
      });
      await writeOptimizerState(dir, s.opt.exportState(), s.opt.step);
      await writeTrainerState(dir, {
        global_step: s.globalStep,
        max_steps: s.T.max_steps,
        training_seed: s.T.seed,
        config_hash: s.hash,
        data_cursor: s.order.position(),
        rng: s.rng.state(),
        log_window: s.logAcc.state(),
        elapsed_s: secs,
        variant: s.variant.name,
        variant_state: s.variant.state ? s.variant.state() : null,
      });
    },
  );
  s.rec.checkpoint(s.globalStep);
  await rotateCheckpoints(s.runDir, s.T.save_total_limit, s.checkpoint);
}

/** A checkpoint every `training.save_steps` steps and after the last one. */
export async function maybeCheckpoint(s: Session): Promise<void> {
  const periodic = s.T.save_steps > 0 && s.globalStep % s.T.save_steps === 0;
  if (periodic || s.globalStep === s.T.max_steps) await saveCheckpoint(s);
}
