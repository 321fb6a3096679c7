/**
 * The trainer-variant contract: how a training method (`sft`,
 * `stage2_ab_training`) plugs into the shared training loop.
 *
 * The loop owns everything that must be identical across methods and exact on
 * resume: optimizer, gradient accumulation, clipping, data order, RNG streams,
 * checkpoints, metrics and the trace's step context. A variant owns what one
 * micro-batch means. Per optimizer step (one accumulation window) the loop:
 *
 * 1. calls `planStep(globalStep, windowSize)` once; the plan
 *    (channel, rollout seed base, ...) is fixed for every micro-batch of the
 *    window and written to the trace as the step record;
 * 2. per micro-batch, calls `prepare(ctx, samples, plan)` OUTSIDE the gradient
 *    tape: no-grad forwards (Channel-A passes 0..n-2), rollouts, parsing,
 *    matching, packing, label/weight construction;
 * 3. calls `loss(ctx, prepared)` INSIDE `tf.variableGrads`: the one forward
 *    that records gradients and the loss built from its logits;
 * 4. sums the micro-batch gradients, divides by the window size (see
 *    `trainer/loop/grads.ts`), clips, and applies AdamW.
 *
 * Everything here is a type. The implementations live beside each other:
 * `trainer/sft/` (Stage 1) and `trainer/stage2/` (Stage-2 AB); the loop
 * (`trainer/loop/`) only sees this contract.
 */
import type { tf } from "../runtime.ts";
import type { DetectionRecord } from "../data/types.ts";
import type { Rng } from "../common/rng.ts";
import type { RenderedSample } from "../tokenizer/chat.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { Stage2Config } from "../config/schema.ts";
import type { ForwardContext } from "../trace/schema.ts";
import type { TraceRecorder } from "../trace/recorder.ts";

/** JSON-serializable value (variant state stored in `trainer_state.json`). */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Per-window decisions, fixed for every micro-batch of one optimizer step. */
export interface StepPlan {
  /** "sft" for Stage 1; "A" or "B" for Stage-2 AB. */
  channel: string;
  /** Forward passes per micro-batch (1 for sft, `n_softctx_iter` for A). */
  nPasses: number;
  /** The schedule pattern in force, or null when the variant has none. */
  pattern: string[] | null;
  /** `(training_seed + global_step * 1000003) & 0x7FFFFFFF` when this step rolls out fresh; else null. */
  rolloutSeedBase: number | null;
  /** True when this step generates new rollouts. */
  freshRollouts: boolean;
  /** True when this step reuses a buffered Channel-B window. */
  bufferReuse: boolean;
  /** Anything else the variant wants in the step record (JSON only). */
  extra?: { [key: string]: JsonValue };
}

/**
 * A training sample as variants receive it: the validated record, its
 * preprocessed image, and the chat rendering (prompt + GT answer) from the
 * tokenizer's `renderChatSample`: `inputIds` [T], `promptLength`, `roles`
 * [T] (`TokenRole` codes: prompt, structure, desc, coord, eot),
 * `coordSlots` (object, slot 0..3, pos in `inputIds`) and `objects` (GT in
 * answer order). Nothing is padded or packed; variants decide that.
 */
export interface RawSample extends RenderedSample {
  /** Position of the record in its JSONL (stable across epochs). */
  index: number;
  record: DetectionRecord;
  /** pixel_values [Npatch, C*temporal_patch*patch*patch], row-major. */
  pixelValues: Float32Array;
  /** [Npatch, D] of `pixelValues`. */
  pixelShape: [number, number];
  /** image_grid_thw: one [t, h, w] per image. */
  imageGridThw: [number, number, number][];
}

/**
 * Where variants report per-step numbers. The loop reduces `mean`/`sum`/`set`
 * values per step and averages them over the logging window into the
 * `train` lines of `metrics.jsonl`; `fact` values get metrics lines of their
 * own, so a variant owns its extra lines without the loop knowing them.
 */
export interface MetricsSink {
  /** Averaged over the micro-batches of the window that reported it. */
  mean(name: string, value: number): void;
  /** Summed over the window (counters). */
  sum(name: string, value: number): void;
  /** Last value wins (configuration echoes such as decode params). */
  set(name: string, value: number): void;
  /**
   * A fact of this step, not a quantity (an id such as the rollout seed
   * base, or the decode settings it was used with): written exactly, once,
   * on this step's metrics line of kind `line` (`{step, kind: line,
   * global_step, ...facts}`), never averaged over the logging window. Last
   * value wins.
   */
  fact(line: string, name: string, value: number): void;
}

/**
 * Trace context of the next model forward(s): pass index, pass count,
 * gradient recording, packing facts and Channel-A soft-context facts. The
 * loop presets globalStep, channel, microBatch, purpose "train", training,
 * pass 0 of `plan.nPasses`; variants patch what differs before each forward.
 */
export type PassInfo = Partial<
  Omit<ForwardContext, "globalStep" | "channel" | "microBatch">
>;

/** What a model handle must offer the loop and its variants. */
export interface TrainModel {
  readonly config: unknown;
  trainableVariables(): tf.Variable[];
}

/** What the loop gives a variant at every call. */
export interface TrainContext<
  M = TrainModel,
  K = Tokenizer,
  C = Stage2Config,
> {
  model: M;
  tokenizer: K;
  /** The resolved run config (`Stage2Config`). */
  config: C;
  /** Optimizer updates done before this window (0-based step being built). */
  globalStep: number;
  /** Micro-batch index within the accumulation window. */
  microBatch: number;
  /** Size of the accumulation window (`gradient_accumulation_steps`; windows are always full). */
  windowSize: number;
  /** The run's training seed. */
  trainingSeed: number;
  /** Patch the trace context of the next forward(s) (see `PassInfo`). */
  setPass(info: PassInfo): void;
  /** The run's trace recorder (for untraced generation: `trace.suspended`). */
  trace: TraceRecorder;
  metrics: MetricsSink;
  /**
   * A named random stream derived from the training seed; its state is saved
   * in checkpoints and restored on resume.
   */
  rng(name: string): Rng;
  /** The run folder (absolute). */
  runDir: string;
}

/** What `loss` returns; metrics may be tensors (read after the tape closes). */
export interface VariantLoss {
  /** Scalar loss of this micro-batch (the loop divides by the window size). */
  loss: tf.Scalar;
  /** Per-micro-batch values, averaged over the window by the loop. */
  metrics: Record<string, number | tf.Scalar>;
}

/** A training method. `P` is what `prepare` hands to `loss`. */
export interface TrainerVariant<
  P = unknown,
  M = TrainModel,
  K = Tokenizer,
  C = Stage2Config,
> {
  /** The `custom.trainer_variant` value. */
  readonly name: string;
  /**
   * True when the loop should pack samples at dataset level (`sft` with
   * `training.packing.enabled`); false when the variant packs itself
   * (`stage2_ab_training` packs after rollouts).
   */
  readonly datasetPacking: boolean;
  /** Once per window; must depend only on its arguments and variant state. */
  planStep(globalStep: number, windowSize: number): StepPlan;
  /** Outside the gradient tape. May run no-grad forwards and generation. */
  prepare(
    ctx: TrainContext<M, K, C>,
    samples: RawSample[],
    plan: StepPlan,
  ): Promise<P>;
  /** Inside `tf.variableGrads`: exactly one gradient-recording forward. */
  loss(ctx: TrainContext<M, K, C>, prepared: P): VariantLoss;
  /** Frees tensors held by `prepared` (called after `loss`, also on error). */
  dispose?(prepared: P): void;
  /** Variant state saved in `trainer_state.json` (e.g. a rollout buffer). */
  state?(): JsonValue;
  /** Restores `state()` on resume. */
  restore?(state: JsonValue): void;
}

/**
 * Builds a variant for one run. Called once at start-up, after the model and
 * tokenizer exist, so guardrails (e.g. packing without 4-row position ids)
 * fail before the first step.
 */
export type VariantFactory<
  P = unknown,
  M = TrainModel,
  K = Tokenizer,
  C = Stage2Config,
> = (
  init: { model: M; tokenizer: K; config: C; trainingSeed: number },
) => TrainerVariant<P, M, K, C>;
