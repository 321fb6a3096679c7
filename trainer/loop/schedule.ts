/**
 * Learning-rate schedules with linear warmup, following Hugging Face's
 * `get_*_schedule_with_warmup` lambdas: optimizer update `s` (0-based) uses
 * `lr * factor(s)`, so with warmup the very first update has lr 0.
 */

export type SchedulerKind = "cosine" | "linear" | "constant";

export interface ScheduleOptions {
  kind: SchedulerKind;
  baseLr: number;
  warmupSteps: number;
  maxSteps: number;
}

/** Multiplier of the base learning rate at optimizer update `step`. */
export function lrFactor(step: number, o: ScheduleOptions): number {
  const warm = Math.max(0, o.warmupSteps);
  if (step < warm) return step / Math.max(1, warm);
  if (o.kind === "constant") return 1;
  const progress = (step - warm) / Math.max(1, o.maxSteps - warm);
  if (o.kind === "linear") return Math.max(0, 1 - progress);
  if (o.kind === "cosine") {
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
  }
  throw new Error(
    `training.lr_scheduler must be cosine, linear or constant, got ${
      JSON.stringify(o.kind)
    }`,
  );
}

/** Learning rate at optimizer update `step` (0-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  return o.baseLr * lrFactor(step, o);
}
