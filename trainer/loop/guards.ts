/**
 * Guards that keep a run from producing or using garbage:
 *
 * - `checkFiniteStep`: the training loop calls it after the gradients of an
 *   optimizer step are reduced and before the optimizer applies them; a
 *   non-finite loss or gradient norm stops the run there (exit 1), so no
 *   NaN weights are ever saved and rotation keeps the good checkpoints.
 * - `checkFiniteWeights`: a checkpoint whose weights hold NaN/Inf is
 *   refused (exit 2) instead of generating nonsense.
 * - `checkMaxNewTokens`: a generation limit beyond the model's context
 *   length is refused (exit 2) instead of generating for hours.
 */
import { InputError, RunFailedError } from "../errors.ts";
import type { Qwen3VLForConditionalGeneration } from "../model/qwen3vl.ts";

/** What the loop knows about the step it is about to apply. */
export interface StepHealth {
  /** The 1-based optimizer step (`global_step` after it is applied). */
  step: number;
  /** The loss of each micro-batch of the step. */
  losses: readonly number[];
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Learning rate this step would use. */
  lr: number;
  /** The newest checkpoint on disk, if any (what a resume starts from). */
  checkpoint: string | null;
}

const show = (v: number) =>
  Number.isNaN(v) ? "NaN" : v > 0 ? "+Infinity" : "-Infinity";

/**
 * Throws `RunFailedError` when the step's loss or gradient norm is not
 * finite, naming the step, the value and the likely cause. Call it before
 * the optimizer update: nothing of the failed step is applied or saved.
 *
 * @example
 * checkFiniteStep({ step: 7, losses: [NaN], gradNorm: NaN, lr: 10, checkpoint: null });
 * // throws "training diverged at step 7: the loss is NaN ..."
 */
export function checkFiniteStep(h: StepHealth): void {
  const bad = h.losses.findIndex((l) => !Number.isFinite(l));
  if (bad < 0 && Number.isFinite(h.gradNorm)) return;
  const what = bad >= 0
    ? `the loss is ${show(h.losses[bad])} (micro-batch ${bad})`
    : `the gradient norm is ${show(h.gradNorm)} (loss ${
      h.losses.map((l) => l.toPrecision(4)).join(", ")
    })`;
  throw new RunFailedError(
    `training diverged at step ${h.step}: ${what}; the update was not applied and nothing was saved${
      h.checkpoint ? ` (checkpoints up to ${h.checkpoint} are kept)` : ""
    }. Likely cause: the learning rate (${
      h.lr.toExponential(2)
    } at this step) is too high for this model and data; lower training.learning_rate (or raise training.warmup_steps) and start again with --overwrite`,
  );
}

/**
 * Throws `InputError` when a parameter of `model` holds NaN or Inf, naming
 * the first such tensor.
 */
export function checkFiniteWeights(
  model: Qwen3VLForConditionalGeneration,
  where: string,
): void {
  for (const name of model.paramNames()) {
    const data = model.param(name).dataSync();
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        throw new InputError(
          `${where}: the weights are not finite (${name} holds ${
            show(data[i])
          } at index ${i}); the run that wrote this checkpoint diverged: use an earlier checkpoint`,
        );
      }
    }
  }
}

/**
 * Throws `InputError` when `maxNewTokens` exceeds the model's context
 * length (`max_position_embeddings`); `what` names the setting.
 */
export function checkMaxNewTokens(
  maxNewTokens: number,
  model: Qwen3VLForConditionalGeneration,
  what: string,
): void {
  const ctx = model.config.text_config.max_position_embeddings;
  if (maxNewTokens > ctx) {
    throw new InputError(
      `${what} is ${maxNewTokens}, more than the model's context length ${ctx} (text_config.max_position_embeddings); set it to at most ${ctx}`,
    );
  }
}
