/** Shared by the loop tests: a tiny SFT run and how its outputs are compared. */
import { join } from "node:path";
import { resolveConfigObject } from "../../../trainer/config/mod.ts";
import { train, type TrainOptions } from "../../../trainer/loop/train.ts";
import { deterministicPart } from "../../../trainer/loop/metrics.ts";

export const quiet = {
  log: () => {},
  progressTty: false,
  skipRolloutEval: true,
};

/**
 * A tiny SFT run: 4 optimizer steps of 2 x 2 samples (6 fixed synthetic
 * images, or fresh ones with `fresh`).
 */
export async function tinyConfig(
  dir: string,
  extra: Record<string, unknown> = {},
  fresh = false,
) {
  return await resolveConfigObject({
    data: {
      synth: {
        n_train: 6,
        n_val: 2,
        seed: 5,
        image_size: 64,
        max_objects: 2,
        fresh,
      },
    },
    training: {
      output_dir: dir,
      seed: 11,
      max_steps: 4,
      micro_batch_size: 2,
      gradient_accumulation_steps: 2,
      learning_rate: 2e-3,
      warmup_steps: 1,
      logging_steps: 1,
      eval_steps: 2,
      save_steps: 2,
      save_total_limit: null,
      trace: fresh ? "off" : "summary",
      ...extra,
    },
  }, join(dir, "test.yaml"));
}

export async function runTiny(
  dir: string,
  o: Partial<TrainOptions> = {},
  fresh = false,
) {
  return await train({
    config: await tinyConfig(dir, {}, fresh),
    ...quiet,
    ...o,
  });
}

/** metrics.jsonl lines without their timing fields. */
export const readMetrics = async (dir: string) =>
  (await Deno.readTextFile(join(dir, "metrics.jsonl"))).trim().split("\n")
    .map(deterministicPart);

export const bytes = (p: string) => Deno.readFile(p);
