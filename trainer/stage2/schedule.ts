/**
 * Stage-2 channel schedule. Everything is a pure function of the optimizer
 * step (`global_step`, counted after gradient accumulation) and the YAML
 * config, so a resumed run continues the schedule from its restored step
 * without any saved scheduler state.
 */
import { faultActive } from "../common/faults.ts";

export type Channel = "A" | "B";

export interface RolloutBufferOptions {
  enabled: boolean;
  /** How many optimizer steps one batch of fresh rollouts serves (>= 1). */
  mSteps: number;
}

/** The per-window decisions of one optimizer step. */
export interface StepPlan {
  globalStep: number;
  /** Channel used by every micro-batch of the accumulation window. */
  channel: Channel;
  /** What the pattern alone says for this step. */
  patternChannel: Channel;
  /** Channel B with rollouts generated at this step. */
  freshRollouts: boolean;
  /** Channel B replaying the rollouts buffered at `bufferSourceStep`. */
  bufferReuse: boolean;
  /** Step whose rollouts are used (this step when fresh), else null. */
  bufferSourceStep: number | null;
  windowSize: number;
}

function checkPattern(
  pattern: readonly string[],
): asserts pattern is Channel[] {
  if (!Array.isArray(pattern) || pattern.length === 0) {
    throw new Error(
      'custom.extra.stage2_ab.schedule.pattern must be a non-empty list of "A"/"B"',
    );
  }
  pattern.forEach((c, i) => {
    if (c !== "A" && c !== "B") {
      throw new Error(
        `custom.extra.stage2_ab.schedule.pattern[${i}] is ${
          JSON.stringify(c)
        }; expected "A" or "B"`,
      );
    }
  });
}

function checkStep(globalStep: number): void {
  if (!Number.isSafeInteger(globalStep) || globalStep < 0) {
    throw new RangeError(
      `global step must be a non-negative integer, got ${globalStep}`,
    );
  }
}

/**
 * Channel of optimizer step `globalStep`: `pattern[globalStep % pattern.length]`.
 *
 * @example
 * channelForStep(["A", "A", "B"], 5); // "B"
 */
export function channelForStep(
  pattern: readonly Channel[],
  globalStep: number,
): Channel {
  checkPattern(pattern);
  checkStep(globalStep);
  const s = faultActive("schedule-off-by-one") ? globalStep + 1 : globalStep;
  return pattern[s % pattern.length];
}

/**
 * Step whose buffered rollouts step `globalStep` replays, or null when the
 * step is not a reuse step. A Channel-B step of the pattern that is not itself
 * a reuse step generates fresh rollouts and its next `mSteps - 1` steps replay
 * them as Channel B; the pattern resumes afterwards at its own index. The walk
 * from step 0 keeps this a pure function of the step (resume-safe); it costs
 * O(globalStep) integer work, negligible next to one training step.
 */
export function bufferSourceFor(
  pattern: readonly Channel[],
  buffer: RolloutBufferOptions,
  globalStep: number,
): number | null {
  checkPattern(pattern);
  checkStep(globalStep);
  const m = buffer.mSteps;
  if (!Number.isSafeInteger(m) || m < 1) {
    throw new RangeError(
      `custom.extra.rollout_matching.rollout_buffer.m_steps must be an integer >= 1, got ${m}`,
    );
  }
  if (!buffer.enabled || m === 1) return null;
  let s = 0;
  while (s <= globalStep) {
    if (pattern[s % pattern.length] === "B") {
      // s is fresh; s+1 .. s+m-1 replay it.
      if (globalStep > s && globalStep < s + m) return s;
      s += m;
    } else s += 1;
  }
  return null;
}

/**
 * Plans one optimizer step (one accumulation window). The channel is fixed
 * for every micro-batch of the window, and reuse steps are Channel B
 * whatever the pattern says.
 *
 * The brief also switches reuse off for a partial final accumulation
 * window; that case never arises here: `training.max_steps` counts
 * optimizer steps and the loop draws every window's
 * `gradient_accumulation_steps` micro-batches from an endless data order
 * (`trainer/loop/train.ts`), so every window is full.
 *
 * @example
 * planStep({ pattern: ["A", "B"], globalStep: 3, windowSize: 2 }).channel; // "B"
 */
export function planStep(opts: {
  pattern: readonly Channel[];
  globalStep: number;
  windowSize: number;
  rolloutBuffer?: RolloutBufferOptions;
}): StepPlan {
  const { pattern, globalStep, windowSize } = opts;
  if (!Number.isSafeInteger(windowSize) || windowSize < 1) {
    throw new RangeError(
      `accumulation window size must be an integer >= 1, got ${windowSize}`,
    );
  }
  const patternChannel = channelForStep(pattern, globalStep);
  const source = opts.rolloutBuffer
    ? bufferSourceFor(pattern, opts.rolloutBuffer, globalStep)
    : null;
  const bufferReuse = source !== null;
  const channel: Channel = bufferReuse ? "B" : patternChannel;
  return {
    globalStep,
    channel,
    patternChannel,
    freshRollouts: channel === "B" && !bufferReuse,
    bufferReuse,
    bufferSourceStep: bufferReuse
      ? source
      : channel === "B"
      ? globalStep
      : null,
    windowSize,
  };
}
