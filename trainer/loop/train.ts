/**
 * The training loop shared by every trainer variant, in the spirit of
 * nanoGPT's train.py: `train()` below reads top to bottom as
 *
 *   set-up (run folder, data, model, variant, optimizer, trace)
 *   for each optimizer step:
 *     plan -> forward/backward over the window (prepare + loss per
 *     micro-batch) -> clip -> optimizer step -> record -> log -> eval ->
 *     checkpoint
 *   final checkpoint, evaluation and completion marker
 *
 * with each step a named function (`step.ts`, `session.ts`, `finish.ts`).
 * What a micro-batch means is the variant's business
 * (`trainer/variant/contract.ts`; `trainer/sft/`, `trainer/stage2/`).
 *
 * Determinism: with the same config and seed, two runs give bitwise-equal
 * weights and equal `metrics.jsonl` lines apart from `timing`; a run killed
 * after a checkpoint and resumed continues exactly (weights, optimizer
 * moments, data cursor, RNG streams and partial logging sums are all
 * restored).
 */
import { join } from "node:path";
import { configHash, loadConfig, warmStartRoot } from "../config/mod.ts";
import type { Stage2Config } from "../config/schema.ts";
import { InputError } from "../errors.ts";
import { EVAL_SUMMARY_FILE, type EvalSummary } from "../eval/mod.ts";
import { finishRun } from "./finish.ts";
import { clipByGlobalNorm } from "./grads.ts";
import { METRICS_FILE, WindowMetrics } from "./metrics.ts";
import { Progress } from "./progress.ts";
import { RUN_COMPLETE_FILE } from "./run_dir.ts";
import {
  closeSession,
  completedRun,
  openRunFolder,
  readJson,
  type RunComplete,
  type Session,
  setUpSession,
  type WarmStartInfo,
} from "./session.ts";
import {
  checkStepFinite,
  evaluate,
  forwardBackward,
  logStep,
  maybeCheckpoint,
  maybeEvaluate,
  optimizerStep,
  recordStep,
} from "./step.ts";

export { RUN_COMPLETE_FILE, type WarmStartInfo };

export interface TrainOptions {
  config: Stage2Config;
  /**
   * Overrides `training.resume`: null = start fresh (the folder must be
   * empty), "auto" = the run folder's newest complete checkpoint (fresh only
   * in a folder without a run), or a checkpoint folder. See `run_dir.ts`.
   */
  resume?: string | null;
  /** Start over in a non-empty run folder, removing only what stage2 wrote. */
  overwrite?: boolean;
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
  /**
   * Skip the validation rollouts (F1, AP, ...) at eval steps and at the
   * end, and so the rollout summary; the eval loss still runs.
   */
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

const MAX_WARM_START_DEPTH = 4;

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

/**
 * Trains the warm-start config (or reuses its finished run, found by its
 * config hash); returns its final checkpoint.
 */
async function warmStart(
  cfg: Stage2Config,
  opts: TrainOptions,
  log: (s: string) => void,
): Promise<WarmStartInfo> {
  const depth = (opts.warmStartDepth ?? 0) + 1;
  const path = cfg.model.warm_start_config!;
  if (depth > MAX_WARM_START_DEPTH) {
    throw new InputError(
      `model.warm_start_config chains more than ${MAX_WARM_START_DEPTH} configs deep (at ${path}); is there a cycle?`,
    );
  }
  const ws = await loadConfig(path);
  const hash = configHash(ws);
  const runDir = join(
    warmStartRoot(cfg),
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
    // its own folder: resume it, or restart a run cut before its first checkpoint
    overwrite: true,
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

/** The result of a run folder that already finished every step. */
function nothingToDo(
  runDir: string,
  finished: NonNullable<Awaited<ReturnType<typeof completedRun>>>,
  tStart: number,
  log: (line: string) => void,
): TrainResult {
  log(
    `nothing to do: the run already completed ${finished.done.global_step} steps; run folder: ${runDir}`,
  );
  return {
    runDir,
    globalStep: finished.done.global_step,
    checkpoint: join(runDir, finished.done.checkpoint),
    evalLossStart: null,
    evalLossEnd: finished.summary?.eval_loss ?? null,
    summary: finished.summary,
    warmStart: null,
    stopped: false,
    wallSeconds: (performance.now() - tStart) / 1000,
  };
}

/** One line saying what this run trains. */
function logRunHeader(s: Session): void {
  const T = s.T;
  s.log(
    `run ${s.runDir}: ${s.variant.name}, ${s.trainStore.size} train / ${s.valStore.size} val samples, ${
      s.params.reduce((n, p) => n + p.size, 0)
    } parameters, ${T.max_steps} steps x ${T.gradient_accumulation_steps} micro-batches of ${T.micro_batch_size}${
      s.packing ? ` (packed, max ${s.packing.max_length} tokens)` : ""
    }`,
  );
}

/** Runs one training config end to end. */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const tStart = performance.now();
  const cfg = opts.config;
  const T = cfg.training;
  const log = opts.log ?? ((line: string) => console.error(line));

  // --- set-up -----------------------------------------------------------------
  // the folder stays locked (train.lock) until train() returns
  await using folder = await openRunFolder(cfg, {
    resume: opts.resume,
    overwrite: opts.overwrite ?? false,
  }, log);
  const finished = await completedRun(folder, T.max_steps);
  if (finished) return nothingToDo(folder.runDir, finished, tStart, log);
  const s = await setUpSession(cfg, folder, {
    log,
    tStart,
    warmStart: (c) => warmStart(c, opts, log),
    rolloutEval: !opts.skipRolloutEval,
    progressTty: opts.progressTty,
  });
  try {
    logRunHeader(s);
    const evalLossStart = s.globalStep === 0 ? await evaluate(s) : null;
    const progress = new Progress({
      total: T.max_steps,
      start: s.globalStep,
      tty: opts.progressTty,
    });
    s.lastLog = performance.now();

    // --- the loop: one optimizer step per iteration ----------------------------
    let stopped = false;
    while (s.globalStep < T.max_steps) {
      const plan = s.variant.planStep(
        s.globalStep,
        T.gradient_accumulation_steps,
      );
      const window = new WindowMetrics();
      const { grads, tokens, losses } = await forwardBackward(s, plan, window);
      const gradNorm = clipByGlobalNorm(grads, T.max_grad_norm);
      // a non-finite loss or gradient stops the run before the weights change
      checkStepFinite(s, grads, losses, gradNorm);
      const lr = optimizerStep(s, grads);
      const values = await recordStep(s, plan, window);
      s.globalStep++;
      await logStep(
        s,
        { ...values, lr, grad_norm: gradNorm, tokens },
        progress,
      );
      await maybeEvaluate(s, progress);
      await maybeCheckpoint(s);
      if (
        opts.stopAfterStep !== undefined && s.globalStep >= opts.stopAfterStep
      ) {
        stopped = s.globalStep < T.max_steps;
        break;
      }
    }
    progress.done();

    // --- the end: final checkpoint, evaluation, completion marker --------------
    const end = await finishRun(s, { stopped });
    return {
      runDir: s.runDir,
      globalStep: s.globalStep,
      checkpoint: s.checkpoint,
      evalLossStart,
      evalLossEnd: end.evalLossEnd,
      summary: end.summary,
      warmStart: s.warm,
      stopped,
      wallSeconds: end.wallSeconds,
    };
  } finally {
    closeSession(s);
  }
}
